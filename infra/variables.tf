# Every setting of the deployment. Only `project` and `image` have no default.

variable "project" {
  description = "The Google Cloud project id DevGem runs in (GOOGLE_CLOUD_PROJECT)."
  type        = string
}

variable "image" {
  description = "DevGem's own image, e.g. us-central1-docker.pkg.dev/PROJECT/devgem/devgem:TAG (scripts/deploy-devgem.sh builds it)."
  type        = string
}

variable "region" {
  description = "Where the functions, the Docker repository and the buckets live (GOOGLE_CLOUD_REGION)."
  type        = string
  default     = "us-central1"
}

variable "firestore_location" {
  description = "The Firestore database's location: a multi-region such as nam5 or eur3, or a region."
  type        = string
  default     = "nam5"
}

variable "artifact_repo" {
  description = "The Artifact Registry Docker repository for DevGem's image and the apps it builds (DEVGEM_ARTIFACT_REPO)."
  type        = string
  default     = "devgem"
}

variable "artifacts_bucket" {
  description = "Bucket for source archives, plans and logs (DEVGEM_BUCKET). Empty: PROJECT-devgem-artifacts."
  type        = string
  default     = ""
}

variable "build_bucket" {
  description = "Bucket Cloud Build reads uploaded sources from (DEVGEM_BUILD_BUCKET). Empty: PROJECT-devgem-builds (not PROJECT_cloudbuild, which gcloud creates on its own and Terraform would then collide with)."
  type        = string
  default     = ""
}

variable "topic_prefix" {
  description = "Prefix of every DevGem topic and subscription (DEVGEM_TOPIC_PREFIX)."
  type        = string
  default     = "devgem-"
}

variable "push_audience" {
  description = "The audience of the OIDC tokens Pub/Sub pushes with (DEVGEM_PUSH_AUDIENCE); also a custom audience of every service, so one value serves all four."
  type        = string
  default     = "devgem-push"
}

variable "max_delivery_attempts" {
  description = "Deliveries of a stage message before it goes to the dead-letter topic (Pub/Sub allows 5 to 100)."
  type        = number
  default     = 5
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub allows 5 to 100 delivery attempts."
  }
}

variable "integration_secrets" {
  description = "Give chat the Gemini and GitHub secrets as env. Turn on once each of those secrets has a version: a Cloud Run revision that references a secret without one never starts."
  type        = bool
  default     = false
}

variable "max_instances" {
  description = "The most instances of each function."
  type        = number
  default     = 10
}

variable "deletion_protection" {
  description = "Refuse to destroy the services, the database and the buckets' contents."
  type        = bool
  default     = true
}

variable "labels" {
  description = "Labels on every resource that takes them."
  type        = map(string)
  default     = { "managed-by" = "terraform", "app" = "devgem" }
}
