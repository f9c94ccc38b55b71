//! The Gemini, Vertex and OpenAI-compatible adapters against loopback stand-ins that answer in
//! the documented shapes (only Google and a real server can answer for real).

use devgem_llm::{
    ApiKey, Conversation, ErrorKind, FunctionCall, FunctionResult, GeminiApi, LanguageModel,
    ModelConfig, ModelTurn, OpenAiCompatible, RetryPolicy, Turn,
};
use devgem_testing::standin::{Response, Standin, gemini, openai};
use devgem_tools::declarations;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "AIza-standin-key-123";

/// Short waits: the tests check the retry behaviour, not the production delays.
fn quick() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
    }
}

fn config(vars: &[(&str, &str)]) -> ModelConfig {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut config = ModelConfig::from_lookup(|name| vars.get(name).cloned()).unwrap();
    config.policy = quick();
    config
}

fn gemini_standin() -> (Arc<gemini::Gemini>, Standin) {
    let api = Arc::new(gemini::Gemini::new(Some(KEY)));
    let standin = Standin::start(None, vec![api.clone()]);
    (api, standin)
}

fn gemini_model(standin: &Standin, model: &str) -> GeminiApi {
    GeminiApi::new(&standin.base_url, model, ApiKey::new(KEY), quick())
}

/// What the tool loop appends after running `turn`'s calls.
fn run_calls(conversation: &mut Conversation, turn: &ModelTurn, response: serde_json::Value) {
    conversation.push_model(turn);
    conversation.turns.push(Turn::Results(
        turn.calls()
            .iter()
            .map(|c| FunctionResult {
                name: c.name.clone(),
                id: c.id.clone(),
                response: response.clone(),
                outcome: None,
            })
            .collect(),
    ));
}

#[tokio::test]
async fn a_function_call_round_trip_on_the_gemini_standin() {
    let (api, standin) = gemini_standin();
    api.script.push(
        "gemini-2.5-flash",
        vec![
            gemini::function_call_response(&[(
                "analyze_repository",
                json!({"source": "octo/app"}),
            )]),
            gemini::text_response("octo/app is a Rust service on port 8080."),
        ],
    );
    let model = gemini_model(&standin, "gemini-2.5-flash");
    let tools = declarations();
    let mut conversation = Conversation::new("You are DevGem.").user("what is octo/app?");

    let turn = model.next(&conversation, &tools).await.unwrap();
    let call = &turn.calls()[0];
    assert_eq!(call.name, "analyze_repository");
    assert_eq!(call.args, json!({"source": "octo/app"}));
    assert!(call.thought_signature.is_some());

    run_calls(
        &mut conversation,
        &turn,
        json!({"language": "rust", "port": 8080}),
    );
    // The stand-in refuses a replay without the thought signature or with results out of order.
    let turn = model.next(&conversation, &tools).await.unwrap();
    assert_eq!(
        turn,
        ModelTurn::Text("octo/app is a Rust service on port 8080.".into())
    );

    let second = &standin.requests_to("POST", ":generateContent")[1].json();
    assert_eq!(
        second["contents"][2]["parts"][0]["functionResponse"],
        json!({"name": "analyze_repository", "response": {"language": "rust", "port": 8080}})
    );
    assert_eq!(
        second["tools"][0]["functionDeclarations"]
            .as_array()
            .unwrap()
            .len(),
        tools.len()
    );
    assert_eq!(
        second["systemInstruction"]["parts"][0]["text"],
        "You are DevGem."
    );
}

#[tokio::test]
async fn the_api_key_is_sent_as_a_header_and_not_in_the_url_on_the_standin() {
    let (_api, standin) = gemini_standin();
    let model = gemini_model(&standin, "gemini-2.5-flash");
    model
        .next(&Conversation::new("sys").user("hi"), &[])
        .await
        .unwrap();
    let request = &standin.requests()[0];
    assert_eq!(
        request.path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(request.header("x-goog-api-key"), Some(KEY));
    assert!(request.query.is_empty(), "{:?}", request.query);

    // A wrong key: a configuration error naming the provider, without the key in it.
    let wrong = GeminiApi::new(
        &standin.base_url,
        "gemini-2.5-flash",
        ApiKey::new("AIza-wrong-key"),
        quick(),
    );
    let err = wrong
        .next(&Conversation::new("sys").user("hi"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unauthorized);
    let text = err.to_string();
    assert!(
        text.starts_with("Gemini API gemini-2.5-flash: HTTP 403"),
        "{text}"
    );
    assert!(!text.contains("AIza-wrong-key"), "{text}");
    assert_eq!(standin.requests().len(), 2, "a 403 is not retried");
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_answered_on_the_standin() {
    let (api, standin) = gemini_standin();
    api.script.push(
        "gemini-2.5-flash",
        vec![gemini::rate_limited(1), gemini::text_response("Here now.")],
    );
    let model = gemini_model(&standin, "gemini-2.5-flash");
    let started = Instant::now();
    let turn = model
        .next(&Conversation::new("sys").user("hi"), &[])
        .await
        .unwrap();
    assert_eq!(turn, ModelTurn::Text("Here now.".into()));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was honoured"
    );
    assert_eq!(standin.requests().len(), 2);
}

#[tokio::test]
async fn a_failing_tier_hands_over_to_the_next_on_the_standin() {
    let (api, standin) = gemini_standin();
    api.script.push(
        "gemini-2.5-pro",
        vec![Response::google_error(
            503,
            "UNAVAILABLE",
            "The model is overloaded.",
        )],
    );
    api.script.push(
        "gemini-2.5-flash",
        vec![gemini::text_response("Flash here.")],
    );
    let chain = config(&[
        ("DEVGEM_LLM", "gemini"),
        ("DEVGEM_LLM_MODEL", "gemini-2.5-pro,gemini-2.5-flash"),
        ("GEMINI_API_KEY", KEY),
        ("DEVGEM_GEMINI_ENDPOINT", &standin.base_url),
    ])
    .build()
    .unwrap();

    let answer = chain
        .answer(&Conversation::new("sys").user("hi"), &declarations())
        .await
        .unwrap();
    assert_eq!(answer.turn, ModelTurn::Text("Flash here.".into()));
    assert_eq!(answer.model, "Gemini API gemini-2.5-flash");
    assert_eq!(answer.failures.len(), 1);
    assert_eq!(answer.failures[0].kind, ErrorKind::Unavailable);
    assert!(answer.failures[0].to_string().contains("overloaded"));
    assert_eq!(
        standin.requests_to("POST", "gemini-2.5-pro").len(),
        3,
        "the overloaded tier was retried as often as the policy allows"
    );
}

#[tokio::test]
async fn when_every_provider_fails_the_offline_engine_answers_on_the_standin() {
    let (_api, standin) = gemini_standin();
    let chain = config(&[
        ("DEVGEM_LLM", "gemini"),
        ("GEMINI_API_KEY", "AIza-revoked"),
        ("DEVGEM_GEMINI_ENDPOINT", &standin.base_url),
    ])
    .build()
    .unwrap();
    let answer = chain
        .answer(
            &Conversation::new("sys").user("deploy github.com/acme/shop"),
            &declarations(),
        )
        .await
        .unwrap();
    assert_eq!(answer.model, "offline");
    assert_eq!(answer.turn.calls()[0].name, "deploy_repository");
    assert_eq!(answer.failures[0].kind, ErrorKind::Unauthorized);
}

#[tokio::test]
async fn vertex_regions_fail_over_with_a_bearer_token_on_the_standin() {
    let api = Arc::new(gemini::Gemini::new(None));
    let standin = Standin::start(Some("ya29.standin"), vec![api.clone()]);
    api.script.push(
        "/locations/europe-west4/",
        vec![Response::google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded.",
        )],
    );
    api.script.push(
        "/locations/us-central1/",
        vec![gemini::function_call_response(&[(
            "list_deployments",
            json!({}),
        )])],
    );
    let chain = config(&[
        ("DEVGEM_LLM", "vertex"),
        ("DEVGEM_LLM_MODEL", "gemini-2.5-pro"),
        ("GOOGLE_CLOUD_PROJECT", "devgem-test"),
        ("DEVGEM_VERTEX_REGIONS", "europe-west4,us-central1"),
        ("DEVGEM_VERTEX_ENDPOINT", &standin.base_url),
        ("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.standin"),
    ])
    .build()
    .unwrap();
    let answer = chain
        .answer(
            &Conversation::new("sys").user("what have I deployed?"),
            &declarations(),
        )
        .await
        .unwrap();
    assert_eq!(answer.model, "Vertex AI gemini-2.5-pro in us-central1");
    assert_eq!(answer.turn.calls()[0].name, "list_deployments");
    assert_eq!(answer.failures[0].kind, ErrorKind::RateLimited);
    let last = standin.requests().pop().unwrap();
    assert_eq!(
        last.path,
        "/v1/projects/devgem-test/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
    );
    assert_eq!(last.header("authorization"), Some("Bearer ya29.standin"));
    assert_eq!(last.json()["contents"][0]["role"], "user");
}

#[tokio::test]
async fn a_malformed_gemini_response_is_a_clear_error_naming_the_provider_on_the_standin() {
    let (api, standin) = gemini_standin();
    api.script.push(
        "gemini-2.5-flash",
        vec![Response::json(
            200,
            json!({"result": "not a GenerateContentResponse"}),
        )],
    );
    api.script.push(
        "gemini-2.5-pro",
        vec![Response::text(200, "<html>proxy error</html>")],
    );
    let err = gemini_model(&standin, "gemini-2.5-flash")
        .next(&Conversation::new("sys").user("hi"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert_eq!(
        err.to_string(),
        "Gemini API gemini-2.5-flash: the response is not the documented shape: no `candidates`"
    );
    let err = gemini_model(&standin, "gemini-2.5-pro")
        .next(&Conversation::new("sys").user("hi"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(err.to_string().starts_with("Gemini API gemini-2.5-pro: the response is not the documented shape: the body is not JSON"), "{err}");
}

fn openai_standin(key: Option<&str>) -> (Arc<openai::OpenAi>, Standin) {
    let api = Arc::new(openai::OpenAi::new(key));
    let standin = Standin::start(None, vec![api.clone()]);
    (api, standin)
}

fn openai_model(standin: &Standin, model: &str, key: Option<&str>) -> OpenAiCompatible {
    OpenAiCompatible::new(
        &format!("{}/v1", standin.base_url),
        model,
        key.map(ApiKey::new),
        quick(),
    )
}

#[tokio::test]
async fn a_function_call_round_trip_on_the_openai_standin() {
    let (api, standin) = openai_standin(Some("sk-standin"));
    api.push_for_model(
        "qwen2.5:7b-instruct",
        vec![
            openai::tool_calls_response(&[(
                "call_hk81qg8b",
                "get_deployment_status",
                json!({"deployment_id": "d-42"}),
            )]),
            openai::text_response("d-42 is live at https://shop.run.app."),
        ],
    );
    let model = openai_model(&standin, "qwen2.5:7b-instruct", Some("sk-standin"));
    let tools = declarations();
    let mut conversation = Conversation::new("You are DevGem.").user("is d-42 up?");
    let turn = model.next(&conversation, &tools).await.unwrap();
    assert_eq!(
        turn.calls(),
        &[FunctionCall {
            id: Some("call_hk81qg8b".into()),
            ..FunctionCall::new("get_deployment_status", json!({"deployment_id": "d-42"}))
        }]
    );
    run_calls(&mut conversation, &turn, json!({"status": "live"}));
    let turn = model.next(&conversation, &tools).await.unwrap();
    assert_eq!(
        turn,
        ModelTurn::Text("d-42 is live at https://shop.run.app.".into())
    );

    let requests = standin.requests_to("POST", "/v1/chat/completions");
    assert_eq!(
        requests[1].header("authorization"),
        Some("Bearer sk-standin")
    );
    let body = requests[1].json();
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "You are DevGem."})
    );
    assert_eq!(
        body["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_hk81qg8b", "content": "{\"status\":\"live\"}"})
    );
    assert_eq!(
        body["messages"][2]["tool_calls"][0]["function"]["arguments"],
        "{\"deployment_id\":\"d-42\"}"
    );
    assert_eq!(body["tools"].as_array().unwrap().len(), tools.len());
}

#[tokio::test]
async fn a_429_then_success_and_failover_to_the_next_model_on_the_openai_standin() {
    let (api, standin) = openai_standin(None);
    api.push_for_model(
        "llama3.1",
        vec![
            openai::error(429, "rate_limit_exceeded", "Rate limit reached.")
                .with_header("retry-after", "0"),
            openai::text_response("Llama here."),
        ],
    );
    api.push_for_model(
        "missing-model",
        vec![openai::error(
            404,
            "not_found_error",
            "model \"missing-model\" not found",
        )],
    );
    let chain = config(&[
        ("DEVGEM_LLM", "openai"),
        ("DEVGEM_LLM_MODEL", "missing-model,llama3.1"),
        ("OPENAI_BASE_URL", &format!("{}/v1", standin.base_url)),
    ])
    .build()
    .unwrap();
    let answer = chain
        .answer(&Conversation::new("sys").user("hi"), &declarations())
        .await
        .unwrap();
    assert_eq!(answer.turn, ModelTurn::Text("Llama here.".into()));
    assert!(
        answer
            .model
            .starts_with("OpenAI-compatible llama3.1 at http://127.0.0.1")
    );
    assert_eq!(answer.failures[0].kind, ErrorKind::Rejected);
    assert!(answer.failures[0].to_string().contains("DEVGEM_LLM_MODEL"));
    // One try for the missing model (not retryable), two for the rate-limited one.
    assert_eq!(standin.requests().len(), 3);
}

#[tokio::test]
async fn a_malformed_openai_response_is_a_clear_error_naming_the_provider_on_the_standin() {
    let (api, standin) = openai_standin(None);
    api.push_for_model(
        "qwen2.5",
        vec![Response::json(
            200,
            json!({"object": "chat.completion", "choices": []}),
        )],
    );
    let err = openai_model(&standin, "qwen2.5", None)
        .next(&Conversation::new("sys").user("hi"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Malformed);
    assert!(
        err.to_string()
            .starts_with("OpenAI-compatible qwen2.5 at http://127.0.0.1"),
        "{err}"
    );
    assert!(
        err.to_string().ends_with("no `choices[0].message`"),
        "{err}"
    );
}

#[tokio::test]
async fn secret_values_never_reach_the_standin() {
    let secret = "sk_live_51Hxyz_SECRET";
    let stored = "db-password-from-the-store";
    let mut conversation = Conversation::new("You are DevGem.").user(format!(
        "deploy octo/shop with STRIPE_KEY={secret} as a secret"
    ));
    conversation.secrets.push(stored.to_string());
    conversation.turns.push(Turn::Model {
        text: None,
        calls: vec![FunctionCall {
            id: Some("call_1".into()),
            ..FunctionCall::new(
                "deploy_repository",
                json!({"source": "octo/shop", "env": {"STRIPE_KEY": secret}, "secret": ["STRIPE_KEY"]}),
            )
        }],
    });
    conversation.turns.push(Turn::Results(vec![FunctionResult {
        name: "deploy_repository".into(),
        id: Some("call_1".into()),
        response: json!({"deployment_id": "d-1", "logs": [format!("connecting with {stored}"), format!("key {secret}")]}),
        outcome: None,
    }]));

    let (_g, gemini_standin) = gemini_standin();
    gemini_model(&gemini_standin, "gemini-2.5-flash")
        .next(&conversation, &declarations())
        .await
        .unwrap();
    let (_o, openai_standin) = openai_standin(None);
    openai_model(&openai_standin, "qwen2.5", None)
        .next(&conversation, &declarations())
        .await
        .unwrap();

    for request in gemini_standin
        .requests()
        .iter()
        .chain(&openai_standin.requests())
    {
        let body = String::from_utf8_lossy(&request.body);
        assert!(!body.contains(secret), "{body}");
        assert!(!body.contains(stored), "{body}");
        assert!(body.contains("STRIPE_KEY"), "the name is kept: {body}");
        assert!(body.contains("***"));
    }
}

#[tokio::test]
async fn a_model_that_does_not_answer_times_out() {
    // A listener that never accepts: the connection opens (the kernel's backlog) and no answer
    // ever comes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let policy = RetryPolicy {
        attempts: 1,
        timeout: Duration::from_millis(300),
        ..quick()
    };
    let model = GeminiApi::new(&base, "gemini-2.5-flash", ApiKey::new(KEY), policy);
    let err = model
        .next(&Conversation::new("sys").user("hi"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert_eq!(
        err.to_string(),
        "Gemini API gemini-2.5-flash: no answer within 300ms"
    );
    drop(listener);
}
