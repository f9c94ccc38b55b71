# One service account per DevGem function, one for Cloud Build, one for the apps DevGem
# deploys and one Pub/Sub pushes with; each holds only the roles of
# shared/docs/platform-contracts.md Appendix A. Grants on one resource (a bucket, a topic, a
# secret, a service, another service account) sit next to that resource's definition when
# they are about it; the project-wide ones are here.

locals {
  # FUNCTION_TARGET names: one Cloud Run service and one service account each.
  function_names = ["chat", "analyze", "build-trigger", "deploy"]

  # Project-wide roles per function. The rest is granted on single resources.
  function_project_roles = {
    # The API (stop, rollback, env, domains) changes services but never their IAM policy, so
    # run.developer rather than run.admin; logs come from Cloud Logging.
    chat = [
      "roles/datastore.user",
      "roles/logging.viewer",
      "roles/run.developer",
    ]
    analyze = [
      "roles/datastore.user",
    ]
    # Starts and cancels Cloud Build builds, and reads their logs for the failure tail.
    build-trigger = [
      "roles/datastore.user",
      "roles/cloudbuild.builds.editor",
      "roles/logging.viewer",
    ]
    # Creates services and makes them public (setIamPolicy for allUsers): run.admin.
    deploy = [
      "roles/datastore.user",
      "roles/run.admin",
    ]
  }

  function_project_grants = merge([
    for function, roles in local.function_project_roles : {
      for role in roles : "${function} ${role}" => { function = function, role = role }
    }
  ]...)

  # The functions that write apps' secrets (deploy, and chat's env API).
  app_secret_writers = ["chat", "deploy"]
}

resource "google_service_account" "function" {
  for_each     = toset(local.function_names)
  project      = var.project
  account_id   = "devgem-${each.key}"
  display_name = "DevGem ${each.key} function"
  depends_on   = [google_project_service.api]
}

resource "google_service_account" "builder" {
  project      = var.project
  account_id   = "devgem-builder"
  display_name = "DevGem builds (Cloud Build runs as it)"
  depends_on   = [google_project_service.api]
}

resource "google_service_account" "runtime" {
  project      = var.project
  account_id   = "devgem-runtime"
  display_name = "Apps deployed by DevGem (no roles of its own)"
  depends_on   = [google_project_service.api]
}

resource "google_service_account" "push" {
  project      = var.project
  account_id   = "devgem-push"
  display_name = "Pub/Sub pushes to the DevGem functions"
  depends_on   = [google_project_service.api]
}

resource "google_project_iam_member" "function" {
  for_each = local.function_project_grants
  project  = var.project
  role     = each.value.role
  member   = google_service_account.function[each.value.function].member
}

# Apps' secrets: create them, add versions and grant the runtime account access to each one,
# without reading any value back (the env API shows secrets masked). Narrower than
# roles/secretmanager.admin, which also reads values.
resource "google_project_iam_custom_role" "app_secrets" {
  project     = var.project
  role_id     = "devgemAppSecrets"
  title       = "DevGem app secrets writer"
  description = "Create apps' secrets and versions and grant access to them, without reading values."
  permissions = [
    "secretmanager.secrets.create",
    "secretmanager.secrets.delete",
    "secretmanager.secrets.get",
    "secretmanager.secrets.getIamPolicy",
    "secretmanager.secrets.list",
    "secretmanager.secrets.setIamPolicy",
    "secretmanager.secrets.update",
    "secretmanager.versions.add",
    "secretmanager.versions.destroy",
    "secretmanager.versions.disable",
    "secretmanager.versions.enable",
    "secretmanager.versions.get",
    "secretmanager.versions.list",
  ]
}

resource "google_project_iam_member" "app_secrets" {
  for_each = toset(local.app_secret_writers)
  project  = var.project
  role     = google_project_iam_custom_role.app_secrets.id
  member   = google_service_account.function[each.key].member
}

# Cloud Build writes its logs to Cloud Logging as the builder.
resource "google_project_iam_member" "builder_logs" {
  project = var.project
  role    = "roles/logging.logWriter"
  member  = google_service_account.builder.member
}

# build-trigger starts builds that run as the builder.
resource "google_service_account_iam_member" "build_trigger_acts_as_builder" {
  service_account_id = google_service_account.builder.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.function["build-trigger"].member
}

# deploy (new services) and chat (new revisions from the env API) run apps as the runtime
# account.
resource "google_service_account_iam_member" "acts_as_runtime" {
  for_each           = toset(["chat", "deploy"])
  service_account_id = google_service_account.runtime.name
  role               = "roles/iam.serviceAccountUser"
  member             = google_service_account.function[each.key].member
}

# Pub/Sub's service agent signs the push tokens as the push account (needed on projects
# created before April 2021, harmless after).
resource "google_service_account_iam_member" "pubsub_signs_push_tokens" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}
