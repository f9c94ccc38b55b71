# One Cloud Run service per DevGem function, all from the one image (`devgem serve`), told
# apart by FUNCTION_TARGET. chat is public (its API asks for DEVGEM_API_TOKEN); the stage
# functions take internal traffic only and only the push account may invoke them.

locals {
  image_repository = "${var.region}-docker.pkg.dev/${var.project}/${var.artifact_repo}"

  # What every function reads (functions/devgem/src/config.rs, shared/gcp config.rs).
  common_env = {
    GOOGLE_CLOUD_PROJECT        = var.project
    GOOGLE_CLOUD_REGION         = var.region
    DEVGEM_STORE                = "firestore"
    DEVGEM_BUS                  = "pubsub"
    DEVGEM_OBJECTS              = "gcs"
    DEVGEM_BUCKET               = google_storage_bucket.artifacts.name
    DEVGEM_TOPIC_PREFIX         = var.topic_prefix
    DEVGEM_PUSH_AUDIENCE        = var.push_audience
    DEVGEM_PUSH_SERVICE_ACCOUNT = google_service_account.push.email
    DEVGEM_LOG_FORMAT           = "json"
  }

  # Building with Cloud Build into Artifact Registry (shared/gcp-run config.rs).
  builder_env = {
    DEVGEM_BUILDER                = "cloudbuild"
    DEVGEM_ARTIFACT_REPO          = google_artifact_registry_repository.devgem.repository_id
    DEVGEM_BUILD_BUCKET           = google_storage_bucket.builds.name
    DEVGEM_IMAGE_REPOSITORY       = local.image_repository
    DEVGEM_BUILD_SERVICE_ACCOUNT  = google_service_account.builder.email
    DEVGEM_GITHUB_TOKEN_SECRET_ID = google_secret_manager_secret.devgem["github-token"].secret_id
  }

  # Running apps on Cloud Run as the runtime account.
  runtime_env = {
    DEVGEM_RUNTIME                 = "cloudrun"
    DEVGEM_ARTIFACT_REPO           = google_artifact_registry_repository.devgem.repository_id
    DEVGEM_RUNTIME_SERVICE_ACCOUNT = google_service_account.runtime.email
  }

  functions = {
    chat = {
      public = true
      # Progress streams (SSE) stay open; Cloud Run's longest request.
      timeout = "3600s"
      env     = tomap(merge(local.common_env, local.runtime_env))
    }
    analyze = {
      public = false
      # As long as the push subscription's ack deadline.
      timeout = "600s"
      env     = tomap(local.common_env)
    }
    build-trigger = {
      public  = false
      timeout = "600s"
      env     = tomap(merge(local.common_env, local.builder_env))
    }
    deploy = {
      public  = false
      timeout = "600s"
      env     = tomap(merge(local.common_env, local.runtime_env))
    }
  }

  # Secret env per function: a reference to the latest version, never the value. The optional
  # ones only once they have a version (var.integration_secrets).
  function_secret_env = {
    for function in local.function_names : function => tomap({
      for secret, s in local.secrets : s.env => google_secret_manager_secret.devgem[secret].secret_id
      if contains(s.readers, function) && (s.required || var.integration_secrets)
    })
  }
}

resource "google_cloud_run_v2_service" "function" {
  for_each            = local.functions
  project             = var.project
  name                = "devgem-${each.key}"
  location            = var.region
  description         = "DevGem ${each.key} function (FUNCTION_TARGET=${each.key})"
  labels              = var.labels
  ingress             = each.value.public ? "INGRESS_TRAFFIC_ALL" : "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = var.deletion_protection
  # Pub/Sub's tokens name this audience (DEVGEM_PUSH_AUDIENCE) rather than each service's URL,
  # which is only known once the service exists.
  custom_audiences = [var.push_audience]

  template {
    service_account                  = google_service_account.function[each.key].email
    timeout                          = each.value.timeout
    max_instance_request_concurrency = 80
    labels                           = var.labels

    scaling {
      min_instance_count = 0
      max_instance_count = var.max_instances
    }

    containers {
      image = var.image
      args  = ["serve"]

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = "1"
          memory = "512Mi"
        }
        startup_cpu_boost = true
      }

      # The function this service hosts: the key of local.functions.
      env {
        name  = "FUNCTION_TARGET"
        value = each.key
      }

      dynamic "env" {
        for_each = each.value.env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.function_secret_env[each.key]
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      startup_probe {
        tcp_socket {
          port = 8080
        }
      }

      liveness_probe {
        http_get {
          path = "/health"
        }
        period_seconds = 30
      }
    }
  }

  depends_on = [
    google_project_service.api,
    google_secret_manager_secret_iam_member.function_reads,
  ]
}

# Only the push account invokes a function through IAM (Cloud Run checks its token before the
# request reaches DevGem, which checks it again).
resource "google_cloud_run_v2_service_iam_member" "push_invokes" {
  for_each = google_cloud_run_v2_service.function
  project  = var.project
  location = each.value.location
  name     = each.value.name
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

# chat is DevGem's API: anyone may reach it, and DEVGEM_API_TOKEN decides who gets in (every
# push it receives carries an OIDC token DevGem verifies). checkov's CKV_GCP_102 would flag
# this on a v1 service; it has no check for v2 services, and tests/infra.rs asserts that chat
# is the only public one.
resource "google_cloud_run_v2_service_iam_member" "public" {
  for_each = { for name, f in local.functions : name => f if f.public }
  project  = var.project
  location = google_cloud_run_v2_service.function[each.key].location
  name     = google_cloud_run_v2_service.function[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
