# What a user needs after `terraform apply`.

output "chat_url" {
  description = "DevGem's API: `devgem --server URL deploy ...` (with DEVGEM_API_TOKEN)."
  value       = google_cloud_run_v2_service.function["chat"].uri
}

output "function_urls" {
  description = "Every function's URL (the stage functions answer only Pub/Sub pushes)."
  value       = { for name, service in google_cloud_run_v2_service.function : name => service.uri }
}

output "image_repository" {
  description = "Where DevGem's image and the apps it builds go."
  value       = local.image_repository
}

output "service_accounts" {
  description = "The service account of each function, of Cloud Build, of deployed apps and of Pub/Sub pushes."
  value = merge(
    { for name, sa in google_service_account.function : name => sa.email },
    {
      builder = google_service_account.builder.email
      runtime = google_service_account.runtime.email
      push    = google_service_account.push.email
    },
  )
}

output "secrets" {
  description = "The secrets to give a value (gcloud secrets versions add ID --data-file=-)."
  value       = { for name, secret in google_secret_manager_secret.devgem : name => secret.secret_id }
}

output "buckets" {
  description = "DEVGEM_BUCKET and DEVGEM_BUILD_BUCKET."
  value = {
    artifacts = google_storage_bucket.artifacts.name
    builds    = google_storage_bucket.builds.name
  }
}
