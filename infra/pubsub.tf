# The topics and push subscriptions of shared/gcp/src/bootstrap.rs (same names, endpoints,
# deadlines and policies), plus Cloud Build's `cloud-builds` topic pushed to build-trigger.
# Every push carries an OIDC token of the push account for `var.push_audience`, and every push
# subscription has a dead-letter policy.

locals {
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  # Short topic names (prefixed with var.topic_prefix): the three stages and the dead letters.
  stage_topics = {
    analyze = "analyze"
    build   = "build"
    deploy  = "deploy"
  }

  # One push subscription per topic: who receives it at `/pubsub/{route}`, how long the
  # handler may take (the ack deadline is also the push request's timeout), and where messages
  # that keep failing go.
  push_subscriptions = {
    analyze = {
      name         = "${var.topic_prefix}analyze-push"
      topic        = google_pubsub_topic.stage["analyze"].id
      function     = "analyze"
      route        = "analyze"
      ack_deadline = 600
      dead_letter  = google_pubsub_topic.dead_letter.id
    }
    build = {
      name         = "${var.topic_prefix}build-push"
      topic        = google_pubsub_topic.stage["build"].id
      function     = "build-trigger"
      route        = "build"
      ack_deadline = 600
      dead_letter  = google_pubsub_topic.dead_letter.id
    }
    deploy = {
      name         = "${var.topic_prefix}deploy-push"
      topic        = google_pubsub_topic.stage["deploy"].id
      function     = "deploy"
      route        = "deploy"
      ack_deadline = 600
      dead_letter  = google_pubsub_topic.dead_letter.id
    }
    # chat fails the deployment a dead letter names. One it cannot handle goes on to the parked
    # topic rather than back to the dead-letter topic, so nothing loops.
    dead-letter = {
      name         = "${var.topic_prefix}dead-letter-push"
      topic        = google_pubsub_topic.dead_letter.id
      function     = "chat"
      route        = "dead-letter"
      ack_deadline = 60
      dead_letter  = google_pubsub_topic.parked.id
    }
    # Cloud Build's state changes (every build in the project; build-trigger keeps DevGem's by
    # tag). Parked, not dead-lettered: chat's handler expects DevGem's own messages, and
    # build-trigger polls a build whose notification is lost.
    cloud-builds = {
      name         = "${var.topic_prefix}cloud-builds-push"
      topic        = google_pubsub_topic.cloud_builds.id
      function     = "build-trigger"
      route        = "cloud-builds"
      ack_deadline = 60
      dead_letter  = google_pubsub_topic.parked.id
    }
  }
}

resource "google_pubsub_topic" "stage" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; messages carry ids only (platform-contracts 5.6), and a customer-managed key is an organisation's choice
  for_each   = local.stage_topics
  project    = var.project
  name       = "${var.topic_prefix}${each.value}"
  labels     = var.labels
  depends_on = [google_project_service.api]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; messages carry ids only (platform-contracts 5.6), and a customer-managed key is an organisation's choice
  project    = var.project
  name       = "${var.topic_prefix}dead-letter"
  labels     = var.labels
  depends_on = [google_project_service.api]
}

# Where messages nobody could handle wait, seven days, for a person (pull subscription below).
resource "google_pubsub_topic" "parked" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; messages carry ids only (platform-contracts 5.6), and a customer-managed key is an organisation's choice
  project    = var.project
  name       = "${var.topic_prefix}dead-letter-parked"
  labels     = var.labels
  depends_on = [google_project_service.api]
}

# Cloud Build publishes here under this fixed name; it does not create the topic itself.
resource "google_pubsub_topic" "cloud_builds" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption; Cloud Build's service agent publishes, and a customer-managed key is an organisation's choice
  project    = var.project
  name       = "cloud-builds"
  depends_on = [google_project_service.api]
}

resource "google_pubsub_subscription" "push" {
  for_each = local.push_subscriptions
  project  = var.project
  name     = each.value.name
  topic    = each.value.topic
  labels   = var.labels

  ack_deadline_seconds       = each.value.ack_deadline
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.function[each.value.function].uri}/pubsub/${each.value.route}"
    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = var.push_audience
    }
  }

  retry_policy {
    minimum_backoff = "1s"
    maximum_backoff = "60s"
  }

  dead_letter_policy {
    dead_letter_topic     = each.value.dead_letter
    max_delivery_attempts = var.max_delivery_attempts
  }

  # Never expire for inactivity: a quiet week must not delete the pipeline.
  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_v2_service_iam_member.push_invokes]
}

resource "google_pubsub_subscription" "parked" {
  project                    = var.project
  name                       = "${var.topic_prefix}dead-letter-parked"
  topic                      = google_pubsub_topic.parked.id
  labels                     = var.labels
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }
}

# Pub/Sub's service agent forwards dead letters: it publishes to the dead-letter topics and
# acknowledges on the source subscriptions (platform-contracts 5.4).
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  for_each = {
    dead-letter = google_pubsub_topic.dead_letter.id
    parked      = google_pubsub_topic.parked.id
  }
  project = var.project
  topic   = each.value
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "agent_forwards_from" {
  for_each     = google_pubsub_subscription.push
  project      = var.project
  subscription = each.value.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# Every function may publish the stage messages (chat starts a deployment, each stage hands
# on to the next and re-publishes after a takeover), and nothing else.
resource "google_pubsub_topic_iam_member" "functions_publish" {
  for_each = merge([
    for function in local.function_names : {
      for stage, topic in google_pubsub_topic.stage : "${function} ${stage}" => {
        function = function
        topic    = topic.id
      }
    }
  ]...)
  project = var.project
  topic   = each.value.topic
  role    = "roles/pubsub.publisher"
  member  = google_service_account.function[each.value.function].member
}
