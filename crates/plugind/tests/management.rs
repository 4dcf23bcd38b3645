//! The management routes Dify's first screens call (http-api §4.5), against the real daemon with
//! one plugin of each provider kind installed on the real SDK: tools (the echo fixture), a model
//! provider, an agent strategy, a datasource and a trigger (small packages built here from the
//! fixture's runtime files). Also `GET /metrics` (301, §1.2) and dispatch to a plugin no runtime
//! serves (404 / -500 "no available node", §6.4).

use std::path::PathBuf;

use plugind_entities::{PluginDeclaration, PluginUniqueIdentifier};
use plugind_store::{Db, DbConfig};
use plugind_test_support::{
    latest_manifest_as, pack_fixture, pack_fixture_with, Client, Daemon, DaemonOptions, FakeDify,
    Variant, ECHO_PLUGIN_ID, ECHO_PROVIDER,
};
use serde_json::{json, Value};

const TENANT: &str = "3e5f7a9b-1c2d-4e6f-8a0b-c1d2e3f4a5b6";
/// A tenant with nothing installed.
const EMPTY_TENANT: &str = "4f6a8b0c-2d3e-4f7a-9b1c-d2e3f4a5b6c7";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_plugind"))
}

fn model_package() -> Vec<u8> {
    let manifest = latest_manifest_as(
        "fakellm",
        "plugins:\n  models:\n    - provider/fakellm.yaml\n",
    );
    let provider = r#"provider: fakellm
label:
  en_US: Fake LLM
icon_small:
  en_US: icon.svg
supported_model_types:
  - llm
configurate_methods:
  - predefined-model
models:
  llm:
    predefined:
      - "models/llm/*.yaml"
extra:
  python:
    provider_source: provider/fakellm.py
    model_sources:
      - models/llm/llm.py
"#;
    let model = r#"model: fake-1
label:
  en_US: Fake 1
model_type: llm
model_properties:
  mode: chat
  context_size: 4096
parameter_rules: []
"#;
    let provider_code = r#"from dify_plugin import ModelProvider


class FakeProvider(ModelProvider):
    def validate_provider_credentials(self, credentials):
        pass
"#;
    let model_code = r#"from dify_plugin import LargeLanguageModel


class FakeLLM(LargeLanguageModel):
    def _invoke(self, model, credentials, prompt_messages, model_parameters, tools=None, stop=None, stream=True, user=None):
        return iter(())

    def get_num_tokens(self, model, credentials, prompt_messages, tools=None):
        return 0

    def validate_credentials(self, model, credentials):
        pass

    @property
    def _invoke_error_mapping(self):
        return {}
"#;
    pack_fixture_with(
        Variant::Latest,
        &[
            ("manifest.yaml", manifest.as_bytes()),
            ("provider/fakellm.yaml", provider.as_bytes()),
            ("provider/fakellm.py", provider_code.as_bytes()),
            ("models/llm/fake.yaml", model.as_bytes()),
            ("models/llm/llm.py", model_code.as_bytes()),
        ],
    )
}

fn agent_package() -> Vec<u8> {
    let manifest = latest_manifest_as(
        "agent",
        "plugins:\n  agent_strategies:\n    - provider/agent.yaml\n",
    );
    let provider = r#"identity:
  author: plugind
  name: agent
  label:
    en_US: Agent
  description:
    en_US: Agent strategies used by plugind tests
  icon: icon.svg
strategies:
  - strategies/plain.yaml
"#;
    let strategy = r#"identity:
  name: plain
  author: plugind
  label:
    en_US: Plain
description:
  en_US: Answers once
parameters:
  - name: query
    type: string
    required: true
    label:
      en_US: Query
extra:
  python:
    source: strategies/plain.py
"#;
    let code = r#"from dify_plugin.interfaces.agent import AgentStrategy


class PlainStrategy(AgentStrategy):
    def _invoke(self, parameters):
        yield self.create_text_message(parameters["query"])
"#;
    pack_fixture_with(
        Variant::Latest,
        &[
            ("manifest.yaml", manifest.as_bytes()),
            ("provider/agent.yaml", provider.as_bytes()),
            ("strategies/plain.yaml", strategy.as_bytes()),
            ("strategies/plain.py", code.as_bytes()),
        ],
    )
}

fn datasource_package() -> Vec<u8> {
    let manifest = latest_manifest_as(
        "crawler",
        "plugins:\n  datasources:\n    - provider/crawler.yaml\n",
    );
    let provider = r#"identity:
  author: plugind
  name: crawler
  label:
    en_US: Crawler
  description:
    en_US: A website crawl datasource used by plugind tests
  icon: icon.svg
provider_type: website_crawl
datasources:
  - datasources/crawl.yaml
extra:
  python:
    source: provider/crawler.py
"#;
    let datasource = r#"identity:
  author: plugind
  name: crawl
  label:
    en_US: Crawl
description:
  en_US: Crawls nothing
parameters: []
extra:
  python:
    source: datasources/crawl.py
"#;
    let provider_code = r#"from dify_plugin.interfaces.datasource import DatasourceProvider


class CrawlerProvider(DatasourceProvider):
    def _validate_credentials(self, credentials):
        pass
"#;
    let code = r#"from dify_plugin.interfaces.datasource.website import WebsiteCrawlDatasource


class Crawl(WebsiteCrawlDatasource):
    def _get_website_crawl(self, datasource_parameters):
        yield from ()
"#;
    pack_fixture_with(
        Variant::Latest,
        &[
            ("manifest.yaml", manifest.as_bytes()),
            ("provider/crawler.yaml", provider.as_bytes()),
            ("provider/crawler.py", provider_code.as_bytes()),
            ("datasources/crawl.yaml", datasource.as_bytes()),
            ("datasources/crawl.py", code.as_bytes()),
        ],
    )
}

fn trigger_package() -> Vec<u8> {
    let manifest = latest_manifest_as(
        "hooks",
        "plugins:\n  triggers:\n    - provider/hooks.yaml\n",
    );
    let provider = r#"identity:
  author: plugind
  name: hooks
  label:
    en_US: Hooks
  description:
    en_US: A trigger provider used by plugind tests
  icon: icon.svg
events:
  - events/ping.yaml
extra:
  python:
    source: provider/hooks.py
"#;
    let event = r#"identity:
  author: plugind
  name: ping
  label:
    en_US: Ping
description:
  en_US: Fires on a ping
parameters: []
extra:
  python:
    source: events/ping.py
"#;
    let provider_code = r#"from dify_plugin.interfaces.trigger import Trigger


class Hooks(Trigger):
    def _dispatch_event(self, subscription, request):
        raise NotImplementedError
"#;
    let code = r#"from dify_plugin.interfaces.trigger import Event


class Ping(Event):
    def _on_event(self, request, parameters, payload):
        raise NotImplementedError
"#;
    pack_fixture_with(
        Variant::Latest,
        &[
            ("manifest.yaml", manifest.as_bytes()),
            ("provider/hooks.yaml", provider.as_bytes()),
            ("provider/hooks.py", provider_code.as_bytes()),
            ("events/ping.yaml", event.as_bytes()),
            ("events/ping.py", code.as_bytes()),
        ],
    )
}

/// `data` of a success envelope answered with HTTP 200.
async fn data(client: &Client, path: &str) -> Value {
    let (status, body) = client.get(path).await.expect("GET");
    assert_eq!((status, &body["code"]), (200, &json!(0)), "{path}: {body}");
    body["data"].clone()
}

/// The inner error object of an error envelope.
fn error_of(body: &Value) -> Value {
    let message = body["message"].as_str().expect("message is a string");
    serde_json::from_str(message).expect("message is JSON")
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect()
}

const ENTITY_KEYS: [&str; 8] = [
    "id",
    "created_at",
    "updated_at",
    "tenant_id",
    "provider",
    "plugin_unique_identifier",
    "plugin_id",
    "declaration",
];

/// The list route answers exactly one provider for `TENANT`, in upstream's shape, nothing for
/// another tenant and nothing on page 2; the single route answers the same entry.
async fn one_provider(
    client: &Client,
    list: &str,
    single: &str,
    plugin_id: &str,
    provider: &str,
    uid: &str,
) -> Value {
    let items = data(
        client,
        &format!("plugin/{TENANT}/management/{list}?page=1&page_size=256"),
    )
    .await;
    let items = items.as_array().expect("a list");
    assert_eq!(items.len(), 1, "{list}: {items:?}");
    let entry = items[0].clone();
    assert_eq!(entry["tenant_id"], TENANT);
    assert_eq!(entry["provider"], provider);
    assert_eq!(entry["plugin_id"], plugin_id);
    assert_eq!(entry["plugin_unique_identifier"], uid);
    assert!(entry["declaration"].is_object(), "{list}: {entry}");

    let page_two = data(
        client,
        &format!("plugin/{TENANT}/management/{list}?page=2&page_size=256"),
    )
    .await;
    assert_eq!(page_two, json!([]), "{list} page 2");
    let other = data(
        client,
        &format!("plugin/{EMPTY_TENANT}/management/{list}?page=1&page_size=256"),
    )
    .await;
    assert_eq!(other, json!([]), "{list} of another tenant");
    let (status, body) = client
        .get(&format!(
            "plugin/{TENANT}/management/{list}?page=1&page_size=257"
        ))
        .await
        .expect("GET");
    assert_eq!((status, &body["code"]), (400, &json!(-400)), "{body}");

    if !single.is_empty() {
        let one = data(
            client,
            &format!(
                "plugin/{TENANT}/management/{single}?plugin_id={plugin_id}&provider={provider}"
            ),
        )
        .await;
        assert_eq!(one, entry, "{single}");
        let (status, body) = client
            .get(&format!(
                "plugin/{TENANT}/management/{single}?plugin_id={plugin_id}"
            ))
            .await
            .expect("GET");
        assert_eq!((status, &body["code"]), (400, &json!(-400)), "{body}");
    }
    entry
}

/// An unknown provider on a single route: HTTP 200 with the error upstream answers.
async fn not_found(client: &Client, single: &str, code: i64, error_type: &str, message: &str) {
    let (status, body) = client
        .get(&format!(
            "plugin/{TENANT}/management/{single}?plugin_id=plugind/none&provider=none"
        ))
        .await
        .expect("GET");
    assert_eq!(status, 200, "{single}: {body}");
    assert_eq!(body["code"], code, "{single}: {body}");
    assert_eq!(body["data"], Value::Null);
    let err = error_of(&body);
    assert_eq!(err["error_type"], error_type, "{single}: {body}");
    assert_eq!(err["message"], message, "{single}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_of_every_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let daemon = Daemon::start(&bin(), DaemonOptions::new(dir.path()), &dify)
        .await
        .expect("daemon starts");
    let client = daemon.client();

    // Nothing installed yet: empty lists, never null.
    for list in [
        "tools",
        "models",
        "agent_strategies",
        "datasources",
        "triggers",
    ] {
        let items = data(
            &client,
            &format!("plugin/{TENANT}/management/{list}?page=1&page_size=256"),
        )
        .await;
        assert_eq!(items, json!([]), "{list}");
    }
    assert_eq!(
        data(
            &client,
            &format!("plugin/{TENANT}/management/models/bindings")
        )
        .await,
        json!([])
    );

    let mut uids = Vec::new();
    for package in [
        pack_fixture(Variant::Latest),
        model_package(),
        agent_package(),
        datasource_package(),
        trigger_package(),
    ] {
        let uid = client
            .install_package(TENANT, package)
            .await
            .unwrap_or_else(|e| panic!("install: {e:#}\n{}", daemon.log_tail(60)));
        uids.push(uid);
    }
    let [tool_uid, model_uid, agent_uid, datasource_uid, trigger_uid] =
        <[String; 5]>::try_from(uids).expect("five uids");

    // Tools: the shape Dify's tool manager parses (it rewrites declaration.identity).
    let tool = one_provider(
        &client,
        "tools",
        "tool",
        ECHO_PLUGIN_ID,
        ECHO_PROVIDER,
        &tool_uid,
    )
    .await;
    assert_eq!(keys(&tool), ENTITY_KEYS);
    assert_eq!(tool["declaration"]["identity"]["name"], ECHO_PROVIDER);
    assert!(tool["declaration"]["tools"].is_array(), "{tool}");

    // Models: `provider` before `tenant_id`, the model provider declaration with its models.
    let model = one_provider(
        &client,
        "models",
        "",
        "plugind/fakellm",
        "fakellm",
        &model_uid,
    )
    .await;
    assert_eq!(
        keys(&model),
        [
            "id",
            "created_at",
            "updated_at",
            "provider",
            "tenant_id",
            "plugin_unique_identifier",
            "plugin_id",
            "declaration"
        ]
    );
    let declaration = &model["declaration"];
    assert_eq!(declaration["provider"], "fakellm");
    assert_eq!(declaration["supported_model_types"], json!(["llm"]));
    assert_eq!(declaration["models"][0]["model"], "fake-1", "{declaration}");

    // Agent strategies: plus the plugin's meta block (Dify reads meta.version).
    let agent = one_provider(
        &client,
        "agent_strategies",
        "agent_strategy",
        "plugind/agent",
        "agent",
        &agent_uid,
    )
    .await;
    let mut agent_keys = ENTITY_KEYS.to_vec();
    agent_keys.push("meta");
    assert_eq!(keys(&agent), agent_keys);
    assert_eq!(agent["meta"]["version"], "0.0.1");
    assert_eq!(agent["declaration"]["identity"]["name"], "agent");
    assert_eq!(
        agent["declaration"]["strategies"][0]["identity"]["name"],
        "plain"
    );

    let datasource = one_provider(
        &client,
        "datasources",
        "datasource",
        "plugind/crawler",
        "crawler",
        &datasource_uid,
    )
    .await;
    assert_eq!(keys(&datasource), ENTITY_KEYS);
    assert_eq!(datasource["declaration"]["identity"]["name"], "crawler");
    assert_eq!(datasource["declaration"]["provider_type"], "website_crawl");
    assert_eq!(
        datasource["declaration"]["datasources"][0]["identity"]["name"],
        "crawl"
    );

    let trigger = one_provider(
        &client,
        "triggers",
        "trigger",
        "plugind/hooks",
        "hooks",
        &trigger_uid,
    )
    .await;
    assert_eq!(keys(&trigger), ENTITY_KEYS);
    assert_eq!(trigger["declaration"]["identity"]["name"], "hooks");
    assert_eq!(
        trigger["declaration"]["events"][0]["identity"]["name"],
        "ping"
    );

    // Unknown providers: upstream's error per route, HTTP 200.
    not_found(
        &client,
        "tool",
        -404,
        "PluginNotFoundError",
        "plugin not found",
    )
    .await;
    not_found(
        &client,
        "agent_strategy",
        -404,
        "PluginNotFoundError",
        "plugin not found",
    )
    .await;
    not_found(
        &client,
        "trigger",
        -404,
        "PluginNotFoundError",
        "plugin not found",
    )
    .await;
    not_found(
        &client,
        "datasource",
        -500,
        "PluginDaemonInternalServerError",
        "record not found",
    )
    .await;

    // Model bindings: the model provider bound to the tenant's current installation.
    let installation_id = {
        let list = data(
            &client,
            &format!("plugin/{TENANT}/management/list?page=1&page_size=256"),
        )
        .await;
        list["list"]
            .as_array()
            .expect("list")
            .iter()
            .find(|p| p["plugin_id"] == "plugind/fakellm")
            .expect("the model plugin is listed")["installation_id"]
            .clone()
    };
    let bindings = data(
        &client,
        &format!("plugin/{TENANT}/management/models/bindings"),
    )
    .await;
    assert_eq!(
        bindings,
        json!([{
            "provider": "fakellm",
            "installation_id": installation_id,
            "plugin_id": "plugind/fakellm",
            "plugin_unique_identifier": model_uid,
            "runtime_type": "local",
            "source": "package",
            "version": "0.0.1",
            "verified": false,
        }])
    );
    assert_eq!(
        data(
            &client,
            &format!("plugin/{EMPTY_TENANT}/management/models/bindings")
        )
        .await,
        json!([])
    );

    // Tool existence, in request order.
    let path = format!("plugin/{TENANT}/management/tools/check_existence");
    let (status, body) = client
        .post_json(
            &path,
            json!({"provider_ids": [
                {"plugin_id": ECHO_PLUGIN_ID, "provider_name": ECHO_PROVIDER},
                {"plugin_id": ECHO_PLUGIN_ID, "provider_name": "nope"},
                {"plugin_id": "plugind/agent", "provider_name": "agent"},
                {"plugin_id": ECHO_PLUGIN_ID, "provider_name": ECHO_PROVIDER},
            ]}),
        )
        .await
        .expect("POST");
    assert_eq!(
        (status, body),
        (
            200,
            json!({"code": 0, "message": "success", "data": [true, false, false, true]})
        )
    );
    let (status, body) = client
        .post_json(&path, json!({"provider_ids": []}))
        .await
        .expect("POST");
    assert_eq!((status, &body["data"]), (200, &json!([])), "{body}");
    for bad in [
        json!({}),
        json!({"provider_ids": null}),
        json!({"provider_ids": [{"plugin_id": ECHO_PLUGIN_ID}]}),
        json!({"provider_ids": [{"provider_name": ECHO_PROVIDER}]}),
    ] {
        let (status, body) = client.post_json(&path, bad.clone()).await.expect("POST");
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["code"], -400, "{bad}: {body}");
        assert_eq!(error_of(&body)["error_type"], "PluginDaemonBadRequestError");
    }
}

/// `GET /metrics` redirects to `/metrics/` (query kept), which serves the exposition text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_redirect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let daemon = Daemon::start(&bin(), DaemonOptions::new(dir.path()), &dify)
        .await
        .expect("daemon starts");
    let client = daemon.client();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client");
    for (path, location) in [("metrics", "/metrics/"), ("metrics?x=1", "/metrics/?x=1")] {
        let resp = http.get(client.url(path)).send().await.expect("GET");
        assert_eq!(resp.status().as_u16(), 301, "{path}");
        assert_eq!(
            resp.headers().get("location").and_then(|v| v.to_str().ok()),
            Some(location),
            "{path}"
        );
    }
    let resp = http.get(client.url("metrics/")).send().await.expect("GET");
    assert_eq!(resp.status().as_u16(), 200);
    let text = resp.text().await.expect("body");
    assert!(text.contains("plugin_http_requests_total"), "{text}");
}

/// A plugin installed for the tenant whose runtime no node serves (here a remote-debugging
/// plugin that is not connected): HTTP 404 with upstream's "no available node" error, which
/// Dify treats as a transient "runtime unavailable".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_without_runtime() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dify = FakeDify::start().await;
    let daemon = Daemon::start(&bin(), DaemonOptions::new(dir.path()), &dify)
        .await
        .expect("daemon starts");
    let client = daemon.client();

    let db = Db::connect(&DbConfig::Sqlite {
        path: dir.path().join("plugind.db"),
    })
    .await
    .expect("open the daemon's database");
    let uid = PluginUniqueIdentifier::parse(
        "plugind/remote:0.0.1@0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    )
    .expect("uid");
    db.install_plugin(
        TENANT,
        &uid,
        "remote",
        "remote",
        &json!({}),
        &PluginDeclaration::default(),
    )
    .await
    .expect("install a remote plugin");
    db.close().await;

    let body = json!({"user_id": "u", "data": {"provider": "p", "tool": "t", "credentials": {},
                                               "tool_parameters": {}}});
    let resp = reqwest::Client::new()
        .post(client.url(&format!("plugin/{TENANT}/dispatch/tool/invoke")))
        .header("X-Api-Key", &daemon.server_key)
        .header("X-Plugin-ID", "plugind/remote")
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    assert_eq!(status, 404, "{text}");
    assert_eq!(
        text,
        r#"{"code":-500,"message":"{\"message\":\"no available node, plugin runtime not found\",\"error_type\":\"PluginDaemonInternalServerError\",\"args\":null}","data":null}"#
    );

    // Not installed at all stays upstream's 404 / -404.
    let (status, events) = client
        .dispatch(TENANT, "plugind/absent", "tool/invoke", body)
        .await
        .expect("dispatch");
    assert_eq!(status, 404);
    assert_eq!(events[0]["code"], -404, "{events:?}");
}
