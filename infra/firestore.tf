# DevGem's state store (DEVGEM_STORE=firestore): the (default) database in Native mode and the
# one composite index its queries need (shared/gcp/src/lib.rs, "Production notes").

resource "google_firestore_database" "devgem" {
  project                           = var.project
  name                              = "(default)"
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  concurrency_mode                  = "OPTIMISTIC"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # `terraform destroy` leaves the database (and every deployment record) in place.
  deletion_policy = "ABANDON"
  depends_on      = [google_project_service.api]
}

# `list` with an owner filter, newest first: deployments(owner ASC, created_us DESC).
resource "google_firestore_index" "deployments_by_owner" {
  project    = var.project
  database   = google_firestore_database.devgem.name
  collection = "deployments"

  fields {
    field_path = "owner"
    order      = "ASCENDING"
  }

  fields {
    field_path = "created_us"
    order      = "DESCENDING"
  }
}
