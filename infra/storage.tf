# Two buckets: DevGem's artifacts (source archives, plans, logs: DEVGEM_BUCKET) and the
# sources Cloud Build reads (DEVGEM_BUILD_BUCKET). Both private, uniform access, versioned.

locals {
  artifacts_bucket = var.artifacts_bucket != "" ? var.artifacts_bucket : "${var.project}-devgem-artifacts"
  build_bucket     = var.build_bucket != "" ? var.build_bucket : "${var.project}-devgem-builds"
}

resource "google_storage_bucket" "artifacts" {
  #checkov:skip=CKV_GCP_62:access logs of a private bucket only DevGem's own accounts can reach would be a second bucket of noise; Cloud Audit Logs record access
  name                        = local.artifacts_bucket
  project                     = var.project
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  labels                      = var.labels

  versioning {
    enabled = true
  }

  # Old versions of overwritten objects go after a week; objects themselves are DevGem's
  # records and stay.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.api]
}

resource "google_storage_bucket" "builds" {
  #checkov:skip=CKV_GCP_62:access logs of a private bucket only DevGem's own accounts can reach would be a second bucket of noise; Cloud Audit Logs record access
  name                        = local.build_bucket
  project                     = var.project
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection
  labels                      = var.labels

  versioning {
    enabled = true
  }

  # A source tarball is read once, by its build; a month covers any retry.
  lifecycle_rule {
    condition {
      age = 30
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 1
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.api]
}

# Every function reads and writes DevGem's artifacts (the stages hand each other archives,
# plans and logs through this bucket).
resource "google_storage_bucket_iam_member" "functions_use_artifacts" {
  for_each = toset(local.function_names)
  bucket   = google_storage_bucket.artifacts.name
  role     = "roles/storage.objectUser"
  member   = google_service_account.function[each.key].member
}

# build-trigger uploads sources for Cloud Build and reads them back.
resource "google_storage_bucket_iam_member" "build_trigger_uploads" {
  for_each = toset(["roles/storage.objectCreator", "roles/storage.objectViewer"])
  bucket   = google_storage_bucket.builds.name
  role     = each.key
  member   = google_service_account.function["build-trigger"].member
}

# Cloud Build fetches the uploaded source (storageSource) as the builder.
resource "google_storage_bucket_iam_member" "builder_reads_sources" {
  bucket = google_storage_bucket.builds.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.builder.member
}
