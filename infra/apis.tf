# The Google APIs DevGem calls. Disabling them on destroy would break anything else in the
# project that uses them, so they stay on.
locals {
  apis = toset([
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "secretmanager.googleapis.com",
    "pubsub.googleapis.com",
    "firestore.googleapis.com",
    "logging.googleapis.com",
    "iam.googleapis.com",
    "storage.googleapis.com",
    "cloudresourcemanager.googleapis.com",
  ])
}

resource "google_project_service" "api" {
  for_each           = local.apis
  project            = var.project
  service            = each.value
  disable_on_destroy = false
}
