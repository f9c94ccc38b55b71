#!/usr/bin/env bash
# Stands DevGem up on Google Cloud: builds its image with Cloud Build and applies infra/.
# Run `scripts/deploy-devgem.sh --help` for the steps and options.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/deploy-devgem.sh [--project ID] [--region REGION] [--tag TAG]
                                [--skip-build] [--auto-approve] [-- TERRAFORM_ARGS...]

Deploys DevGem (the four functions chat, analyze, build-trigger, deploy) to a Google Cloud
project with the Terraform in infra/:

  1. terraform init, then apply only the APIs, the Artifact Registry repository and the
     secrets (the image needs the repository; the services need the secrets);
  2. gives the API token secret (devgem_api-token) a random value if it has none yet; read it
     with: gcloud secrets versions access latest --secret devgem_api-token
  3. builds the image from this checkout with Cloud Build (gcloud builds submit --tag);
  4. applies everything and prints chat_url, DevGem's API.

Options:
  --project ID     the project (default: $GOOGLE_CLOUD_PROJECT, else gcloud's configured one)
  --region REGION  where everything runs (default: $GOOGLE_CLOUD_REGION, else us-central1)
  --tag TAG        the image tag (default: the git commit, with -dirty for local changes)
  --skip-build     use an image with that tag that was built before
  --auto-approve   apply without Terraform asking
  -h, --help       this text
Anything after `--` goes to both `terraform apply` runs (e.g. -- -var max_instances=3).

The Gemini and GitHub secrets (devgem_gemini-api-key, devgem_github-webhook-secret,
devgem_github-oauth-client-secret, devgem_github-token) are handed to the functions once all
of them have a version:  printf %s "$VALUE" | gcloud secrets versions add ID --data-file=-

Needs: gcloud (logged in: gcloud auth login and gcloud auth application-default login) and
terraform >= 1.5, with rights to enable APIs, create service accounts and grant roles
(roles/owner, or the admin roles of each service).
EOF
}

die() {
  echo "deploy-devgem: $*" >&2
  exit 1
}

project="${GOOGLE_CLOUD_PROJECT:-}"
region="${GOOGLE_CLOUD_REGION:-us-central1}"
tag=""
build=1
approve=()
extra=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --project) [ "$#" -ge 2 ] || die "--project needs a project id"; project="$2"; shift 2 ;;
    --region) [ "$#" -ge 2 ] || die "--region needs a region"; region="$2"; shift 2 ;;
    --tag) [ "$#" -ge 2 ] || die "--tag needs a tag"; tag="$2"; shift 2 ;;
    --skip-build) build=0; shift ;;
    --auto-approve) approve=(-auto-approve); shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

command -v gcloud >/dev/null ||
  die "gcloud is missing: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install)"
command -v terraform >/dev/null ||
  die "terraform is missing: install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install)"

if [ -z "$project" ]; then
  project="$(gcloud config get-value project 2>/dev/null || true)"
fi
[ -n "$project" ] && [ "$project" != "(unset)" ] ||
  die "no project: pass --project ID, export GOOGLE_CLOUD_PROJECT, or run gcloud config set project ID"

root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$tag" ]; then
  if tag="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null)"; then
    [ -z "$(git -C "$root" status --porcelain 2>/dev/null)" ] || tag="$tag-dirty"
  else
    tag="$(date -u +%Y%m%d-%H%M%S)"
  fi
fi
repo="devgem"
image="$region-docker.pkg.dev/$project/$repo/devgem:$tag"
vars=(-var "project=$project" -var "region=$region" -var "artifact_repo=$repo" -var "image=$image")

echo "deploy-devgem: project $project, region $region, image $image"
cd "$root/infra"
terraform init -input=false

echo "deploy-devgem: 1/4 APIs, Docker repository and secrets"
terraform apply -input=false "${approve[@]}" "${vars[@]}" \
  -target=google_project_service.api \
  -target=google_artifact_registry_repository.devgem \
  -target=google_secret_manager_secret.devgem \
  "${extra[@]}"

has_version() {
  [ -n "$(gcloud secrets versions list "$1" --project "$project" --filter=state=ENABLED \
    --limit 1 --format='value(name)' 2>/dev/null)" ]
}

echo "deploy-devgem: 2/4 secrets"
if ! has_version devgem_api-token; then
  # 32 random bytes as hex; never printed.
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' |
    gcloud secrets versions add devgem_api-token --project "$project" --data-file=- >/dev/null
  echo "deploy-devgem: made an API token; read it with:" \
       "gcloud secrets versions access latest --secret devgem_api-token --project $project"
fi
integration=true
for secret in devgem_gemini-api-key devgem_github-webhook-secret \
              devgem_github-oauth-client-secret devgem_github-token; do
  if ! has_version "$secret"; then
    integration=false
    echo "deploy-devgem: $secret has no value yet, so the Gemini and GitHub secrets stay off" \
         "(printf %s \"\$VALUE\" | gcloud secrets versions add $secret --data-file=-)"
  fi
done
vars+=(-var "integration_secrets=$integration")

if [ "$build" = 1 ]; then
  echo "deploy-devgem: 3/4 building $image with Cloud Build"
  gcloud builds submit "$root" --project "$project" --region "$region" --tag "$image" \
    --machine-type e2-highcpu-8 --timeout 3600s
else
  echo "deploy-devgem: 3/4 skipped: using $image as built before"
fi

echo "deploy-devgem: 4/4 everything else"
terraform apply -input=false "${approve[@]}" "${vars[@]}" "${extra[@]}"
echo "deploy-devgem: DevGem's API is at $(terraform output -raw chat_url)"
