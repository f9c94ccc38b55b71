# The Docker repository for DevGem's own image and every app it builds, with the BuildKit (or
# kaniko) layer cache under the `cache` package path.

resource "google_artifact_registry_repository" "devgem" {
  #checkov:skip=CKV_GCP_84:Google-managed encryption; a customer-managed key is an organisation's choice, not DevGem's
  project       = var.project
  location      = var.region
  repository_id = var.artifact_repo
  description   = "DevGem's image, the apps it builds and their layer cache"
  format        = "DOCKER"
  labels        = var.labels

  # Cleanup runs only when dry run is off.
  cleanup_policy_dry_run = false

  # A cache layer nobody has pushed in two weeks is dead weight: builds recreate it.
  cleanup_policies {
    id     = "delete-stale-cache"
    action = "DELETE"
    condition {
      package_name_prefixes = ["cache"]
      older_than            = "1209600s"
    }
  }

  # Untagged images are superseded pushes; a month leaves time for a rollback by digest.
  cleanup_policies {
    id     = "delete-old-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "2592000s"
    }
  }

  # Whatever else matches, the newest ten versions of every app stay, so rollbacks work.
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }

  depends_on = [google_project_service.api]
}

# Cloud Build pushes images and the cache as the builder.
resource "google_artifact_registry_repository_iam_member" "builder_writes" {
  project    = var.project
  location   = google_artifact_registry_repository.devgem.location
  repository = google_artifact_registry_repository.devgem.name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.builder.member
}

# build-trigger checks that the repository exists before a build.
resource "google_artifact_registry_repository_iam_member" "build_trigger_reads" {
  project    = var.project
  location   = google_artifact_registry_repository.devgem.location
  repository = google_artifact_registry_repository.devgem.name
  role       = "roles/artifactregistry.reader"
  member     = google_service_account.function["build-trigger"].member
}
