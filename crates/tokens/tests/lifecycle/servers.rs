//! The upstream server registry against a real PostgreSQL.

use chrono::Utc;
use tessera_core::catalog::{ServerName, ToolName};
use tessera_core::lifecycle::Requester;
use tessera_core::sealed::SealKey;
use tessera_core::upstream::{ToolAccess, UpstreamHeader, UpstreamUrl};
use tessera_core::values::{Lifetime, TokenName};
use tessera_store::{Actor, DiscoveredTool, Store};
use tessera_testkit::fresh_db;
use tessera_tokens::{IssueInput, ServerError, ServerInput, ServerService};

use super::{setup, user};

const SECRET: &str = "upstream-credential-7f3a9c";

fn server(name: &str) -> ServerInput {
    ServerInput {
        name: ServerName::parse(name).unwrap(),
        url: UpstreamUrl::parse("http://127.0.0.1:9/mcp").unwrap(),
        description: None,
        headers: vec![UpstreamHeader::parse(&format!("Authorization: Bearer {SECRET}")).unwrap()],
        new_tools: Default::default(),
    }
}

async fn registry(store: &Store) -> ServerService {
    ServerService::new(store.clone(), SealKey::generate())
}

#[tokio::test]
async fn a_registered_servers_scopes_join_the_catalog() {
    let db = fresh_db().await;
    let servers = registry(&db.store).await;
    assert!(servers.catalog().await.unwrap().grant(["read:notes"]).is_err());
    servers.add(&Actor::cli(), server("notes"), Utc::now()).await.unwrap();
    let catalog = servers.catalog().await.unwrap();
    assert!(catalog.grant(["read:notes", "write:notes", "call:notes/add_note"]).is_ok());
    assert!(catalog.grantable().contains(&"write:notes".to_owned()));
}

#[tokio::test]
async fn header_values_are_not_in_the_databases_plaintext() {
    let db = fresh_db().await;
    let servers = registry(&db.store).await;
    servers.add(&Actor::cli(), server("notes"), Utc::now()).await.unwrap();
    let dump: Vec<String> = sqlx::query_scalar(
        "SELECT row_to_json(h)::text FROM server_headers h
         UNION ALL SELECT row_to_json(s)::text FROM servers s
         UNION ALL SELECT row_to_json(a)::text FROM audit_events a",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    assert!(!dump.is_empty());
    for row in dump {
        assert!(!row.contains(SECRET), "{row}");
    }
}

#[tokio::test]
async fn header_values_open_again_for_the_upstream_call_with_the_same_key_only() {
    let db = fresh_db().await;
    let key = SealKey::generate();
    let servers = ServerService::new(db.store.clone(), key.clone());
    let record = servers.add(&Actor::cli(), server("notes"), Utc::now()).await.unwrap();
    assert_eq!(record.header_names, ["authorization"]);
    let opened = servers.open_headers(&record).await.unwrap();
    assert_eq!(opened[0].expose_value(), format!("Bearer {SECRET}"));
    let other = ServerService::new(db.store.clone(), SealKey::generate());
    assert!(matches!(other.open_headers(&record).await, Err(ServerError::Seal(_))));
}

#[tokio::test]
async fn a_taken_name_is_a_conflict() {
    let db = fresh_db().await;
    let servers = registry(&db.store).await;
    servers.add(&Actor::cli(), server("notes"), Utc::now()).await.unwrap();
    assert!(matches!(servers.add(&Actor::cli(), server("notes"), Utc::now()).await, Err(ServerError::Conflict)));
}

#[tokio::test]
async fn a_token_with_server_scopes_names_the_servers_resource() {
    let (db, tokens) = setup().await;
    let servers = registry(&db.store).await;
    servers.add(&Actor::cli(), server("notes"), Utc::now()).await.unwrap();
    let owner = user(&db.store, "a@example.com").await;
    let scopes = servers.catalog().await.unwrap().grant(["read:tasks", "call:notes/add_note"]).unwrap();
    let input = IssueInput {
        owner,
        name: TokenName::parse("t").unwrap(),
        description: None,
        scopes,
        lifetime: Lifetime::from_days(30).unwrap(),
        rate_limit: None,
    };
    let issued = tokens.issue(&Requester::Cli, None, input, Utc::now()).await.unwrap();
    assert_eq!(issued.record.audience, [super::AUD.to_owned(), format!("{}/notes", super::AUD)]);
}

#[tokio::test]
async fn removing_a_server_takes_its_scopes_out_of_tokens_and_keeps_the_rest() {
    let (db, tokens) = setup().await;
    let servers = registry(&db.store).await;
    servers.add(&Actor::cli(), server("notes"), Utc::now()).await.unwrap();
    servers.add(&Actor::cli(), server("notes-2"), Utc::now()).await.unwrap();
    let owner = user(&db.store, "a@example.com").await;
    let scopes = servers
        .catalog()
        .await
        .unwrap()
        .grant(["read:tasks", "write:notes", "call:notes/add", "read:notes-2"])
        .unwrap();
    let input = IssueInput {
        owner,
        name: TokenName::parse("t").unwrap(),
        description: None,
        scopes,
        lifetime: Lifetime::from_days(30).unwrap(),
        rate_limit: None,
    };
    let issued = tokens.issue(&Requester::Cli, None, input, Utc::now()).await.unwrap();
    servers.remove(&Actor::cli(), "notes").await.unwrap();
    let row = db.store.get_token(issued.record.id).await.unwrap().unwrap();
    assert_eq!(row.scopes, ["read:notes-2", "read:tasks"]);
    assert!(matches!(servers.get("notes").await, Err(ServerError::NotFound)));
    assert!(matches!(servers.remove(&Actor::cli(), "notes").await, Err(ServerError::NotFound)));
}

#[tokio::test]
async fn a_tools_class_is_the_admins_override_else_its_read_only_hint() {
    let db = fresh_db().await;
    let servers = registry(&db.store).await;
    let record = servers.add(&Actor::cli(), server("notes"), Utc::now()).await.unwrap();
    let found = |name: &str, hint| DiscoveredTool {
        name: name.into(),
        description: None,
        read_only_hint: hint,
        definition: None,
    };
    db.store
        .record_discovered_tools(&record, &[found("list", Some(true)), found("add", None)], Utc::now())
        .await
        .unwrap();
    let tool = ToolName::parse("list").unwrap();
    servers.set_tool_access(&Actor::cli(), "notes", &tool, Some(ToolAccess::Hidden)).await.unwrap();
    let tools = servers.tools(&record).await.unwrap();
    let class: Vec<_> = tools.iter().map(|t| (t.record.name.as_str(), t.access)).collect();
    assert_eq!(class, [("add", ToolAccess::Write), ("list", ToolAccess::Hidden)]);
}

#[tokio::test]
async fn the_key_is_needed_only_once_a_credential_is_stored() {
    let db = fresh_db().await;
    let servers = ServerService::with_key_loader(db.store.clone(), Box::new(|| Err("no key configured".to_owned())));
    let mut bare = server("bare");
    bare.headers.clear();
    let record = servers.add(&Actor::cli(), bare, Utc::now()).await.unwrap();
    assert!(servers.open_headers(&record).await.unwrap().is_empty());
    assert!(matches!(
        servers.add(&Actor::cli(), server("notes"), Utc::now()).await,
        Err(ServerError::KeyUnavailable(_))
    ));
}
