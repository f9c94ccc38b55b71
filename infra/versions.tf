# The Terraform and provider versions this configuration is written for.
terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.10, < 8"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

# The project number names Google's service agents (Pub/Sub, Cloud Build).
data "google_project" "this" {
  project_id = var.project
}
