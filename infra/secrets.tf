# The secrets DevGem itself reads, as empty Secret Manager secrets: no value is ever in this
# configuration or its state. Add each value with
#   printf %s "$VALUE" | gcloud secrets versions add SECRET_ID --data-file=-
# The ids use `devgem_` (underscore): app secrets are `devgem-KEY` (shared/gcp-run names.rs),
# so no app's env key can collide with these.

locals {
  secrets = {
    # chat serves the API on a public URL: clients send Authorization: Bearer <token>.
    api-token = {
      env      = "DEVGEM_API_TOKEN"
      readers  = ["chat"]
      required = true
    }
    gemini-api-key = {
      env      = "GEMINI_API_KEY"
      readers  = ["chat"]
      required = false
    }
    github-webhook-secret = {
      env      = "GITHUB_WEBHOOK_SECRET"
      readers  = ["chat"]
      required = false
    }
    github-oauth-client-secret = {
      env      = "GITHUB_OAUTH_CLIENT_SECRET"
      readers  = ["chat"]
      required = false
    }
    # Private repositories: analyze clones with it; Cloud Build's git step reads it as the
    # builder through availableSecrets.
    github-token = {
      env      = "GITHUB_TOKEN"
      readers  = ["analyze"]
      required = false
    }
  }

  secret_readers = merge([
    for secret, s in local.secrets : {
      for reader in s.readers : "${secret} ${reader}" => { secret = secret, reader = reader }
    }
  ]...)
}

resource "google_secret_manager_secret" "devgem" {
  for_each  = local.secrets
  project   = var.project
  secret_id = "devgem_${each.key}"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.api]
}

resource "google_secret_manager_secret_iam_member" "function_reads" {
  for_each  = local.secret_readers
  project   = var.project
  secret_id = google_secret_manager_secret.devgem[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function[each.value.reader].member
}

resource "google_secret_manager_secret_iam_member" "builder_reads_github_token" {
  project   = var.project
  secret_id = google_secret_manager_secret.devgem["github-token"].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.builder.member
}

# A private repository is cloned by Cloud Build with its owner's GitHub token, which the
# secrets port keeps as `devgem-accounts-USER-github-token` (created when they sign in).
resource "google_project_iam_member" "builder_reads_owner_github_tokens" {
  project = var.project
  role    = "roles/secretmanager.secretAccessor"
  member  = google_service_account.builder.member
  condition {
    title       = "owners-github-tokens"
    description = "Only the GitHub tokens of signed-in users"
    expression  = "resource.name.startsWith(\"projects/${data.google_project.this.number}/secrets/devgem-accounts-\") && resource.name.extract(\"/secrets/{id}/\").endsWith(\"-github-token\")"
  }
}
