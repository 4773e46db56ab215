//! The `arca` binary: `arca serve`, plus offline admin commands that work directly against the
//! configured metadata store (so scripts can manage users and tokens without the HTTP API).

use clap::{Parser, Subcommand};

use arca::auth::{generate_token, hash_password, hash_token};
use arca::config::{Config, ConfigArgs};
use arca::model::Role;
use arca::store::Db;

#[derive(Parser)]
#[command(name = "arca", version, about = "Multi-format artifact registry")]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Manage users and their roles.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage the secrets upstream proxies refer to by name (values are never printed).
    #[command(subcommand)]
    Secret(SecretCmd),
    /// Collect blobs nothing refers to any more (safe while servers run).
    Gc {
        /// Leave blobs stored or referenced within this many seconds alone.
        #[arg(long, default_value_t = 3600)]
        grace_secs: u64,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Create a token for a user and print it (the only time it is shown).
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "cli")]
        name: String,
        /// Only registries at or below this scope (e.g. `acme/web`).
        #[arg(long)]
        scope: Option<String>,
        /// At most this role.
        #[arg(long, value_parser = ["reader", "deployer", "admin"])]
        role: Option<String>,
        /// Expire after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// List tokens (never their secrets): id, user, name, created, state, scope, role, expiry.
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by id.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum SecretCmd {
    /// Set a secret in a space; the value comes from --value or, without it, from stdin.
    Set {
        /// The space (scope path), e.g. `acme` or `acme/web`.
        space: String,
        identifier: String,
        #[arg(long, env = "ARCA_SECRET_VALUE")]
        value: Option<String>,
    },
    /// List a space's secrets (names only).
    List { space: String },
    /// Delete a secret.
    Delete { space: String, identifier: String },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user. With --role and --scope, also grant a role on a scope (e.g. `acme/web`).
    Create {
        name: String,
        #[arg(long, env = "ARCA_USER_PASSWORD")]
        password: Option<String>,
        #[arg(long)]
        admin: bool,
        #[arg(long, value_parser = ["reader", "deployer", "admin"], requires = "scope")]
        role: Option<String>,
        #[arg(long, requires = "role")]
        scope: Option<String>,
    },
    /// Grant a role (reader, deployer, admin) on a scope; inherited by everything below it.
    Grant {
        name: String,
        #[arg(long, value_parser = ["reader", "deployer", "admin"])]
        role: String,
        #[arg(long)]
        scope: String,
    },
    /// List users with their roles.
    List,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ARCA_LOG")
                .unwrap_or_else(|_| "info,tower_http=warn,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: not in files, pipes or journals.
        .with_ansi(colours())
        .init();
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Whether log lines may carry ANSI colours: stdout and stderr are terminals and `NO_COLOR` is unset.
fn colours() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none()
        && std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal()
}

/// Epoch milliseconds as an RFC 3339 UTC time (`2026-01-31T12:00:00Z`).
fn when(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

fn api(e: arca::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(&cli.config)?;
    if let Command::Serve = cli.command {
        return arca::server::serve(config).await;
    }
    if let Command::Gc { grace_secs } = cli.command {
        let state = arca::server::build_state(config).await?;
        let purged = arca::gc::purge_trash(&state.db, state.config.trash_retention_days)
            .await
            .map_err(api)?;
        if purged > 0 {
            println!(
                "purged {purged} versions deleted more than {} days ago from the trash",
                state.config.trash_retention_days
            );
        }
        let r = arca::gc::collect(
            &state.db,
            state.blobs.as_ref(),
            std::time::Duration::from_secs(grace_secs),
        )
        .await
        .map_err(api)?;
        if r.busy {
            println!("another collector is running (its lease is held); nothing was collected");
            return Ok(());
        }
        println!(
            "collected {} blobs ({} bytes), {} unrecorded blobs ({} bytes), {} leftovers of interrupted writes ({} bytes), {} expired OCI links, {} abandoned uploads, {} expired proxy cache files",
            r.blobs,
            r.bytes,
            r.orphans,
            r.orphan_bytes,
            r.leftovers,
            r.leftover_bytes,
            r.links,
            r.uploads,
            r.expired
        );
        return Ok(());
    }
    std::fs::create_dir_all(&config.data_dir)?;
    let db = Db::connect(&config.database_url).await?;
    match cli.command {
        Command::Serve | Command::Gc { .. } => unreachable!("handled above"),
        Command::Token(TokenCmd::Create {
            user,
            name,
            scope,
            role,
            expires_in_days,
        }) => {
            let u = db
                .user_by_name(&user)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user '{user}'"))?;
            let scope = scope.map(|s| s.trim_matches('/').to_ascii_lowercase());
            if let Some(s) = &scope
                && db.scope_by_path(s).await?.is_none()
            {
                anyhow::bail!("scope '{s}' doesn't exist");
            }
            let limit = arca::store::auth::TokenLimit {
                scope,
                role: role.as_deref().and_then(Role::parse),
                expires_at: expires_in_days
                    .map(|d| arca::model::now_ms() + i64::from(d) * 86_400_000),
            };
            let token = generate_token();
            let id = db
                .insert_limited_token(&arca::store::auth::NewToken {
                    user_id: &u.id,
                    name: &name,
                    token_hash: &hash_token(&token),
                    limit: &limit,
                    created_by: None,
                })
                .await?;
            eprintln!("token id: {id}");
            println!("{token}");
        }
        Command::Token(TokenCmd::List { user }) => {
            // One tab-separated row per token, no header (scripts read it): id, user, name,
            // created, state, scope, role, expiry.
            let now = arca::model::now_ms();
            for t in db.list_tokens(user.as_deref()).await? {
                let state = match (t.revoked_at, t.limit.expires_at) {
                    (Some(at), _) => format!("revoked {}", when(at)),
                    (None, Some(at)) if at <= now => "expired".to_string(),
                    _ => "active".to_string(),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.user_name,
                    t.name,
                    when(t.created_at),
                    state,
                    t.limit.scope.as_deref().unwrap_or("*"),
                    t.limit.role.map_or("*", |r| r.as_str()),
                    t.limit.expires_at.map_or_else(|| "never".to_string(), when),
                );
            }
        }
        Command::Token(TokenCmd::Revoke { id }) => {
            if !db.revoke_token(&id).await? {
                anyhow::bail!("no active token '{id}'");
            }
            println!("revoked {id}");
        }
        Command::User(UserCmd::Create {
            name,
            password,
            admin,
            role,
            scope,
        }) => {
            arca::model::validate_identifier("name", &name).map_err(api)?;
            let hash = password.as_deref().map(hash_password).transpose()?;
            let u = db.create_user(&name, hash.as_deref(), admin).await?;
            println!(
                "created {}user '{}' (id {}){}",
                if admin { "administrator " } else { "" },
                u.name,
                u.id,
                if password.is_some() {
                    ", signing in with its password"
                } else {
                    ", without a password: create a token with `arca token create --user NAME`"
                }
            );
            if let (Some(role), Some(scope)) = (role, scope) {
                grant(&db, &u.id, &role, &scope).await?;
                println!("granted {role} on {scope} to {name}");
            }
        }
        Command::User(UserCmd::Grant { name, role, scope }) => {
            let u = db
                .user_by_name(&name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user '{name}'"))?;
            grant(&db, &u.id, &role, &scope).await?;
            println!("granted {role} on {scope} to {name}");
        }
        Command::Secret(SecretCmd::Set {
            space,
            identifier,
            value,
        }) => {
            arca::model::validate_identifier("identifier", &identifier).map_err(api)?;
            let value = match value {
                Some(v) => v,
                None => {
                    let mut v = String::new();
                    std::io::Read::read_to_string(&mut std::io::stdin(), &mut v)?;
                    v.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            anyhow::ensure!(!value.is_empty(), "the secret's value is empty");
            let space = space.trim_matches('/');
            db.set_secret(space, &identifier, &value).await?;
            println!("set secret '{identifier}' in '{space}'");
        }
        Command::Secret(SecretCmd::List { space }) => {
            for s in db.list_secrets(space.trim_matches('/')).await? {
                println!(
                    "{}\t{}\t{}",
                    s.scope_path,
                    s.identifier,
                    arca::model::rfc3339(s.updated_at)
                );
            }
        }
        Command::Secret(SecretCmd::Delete { space, identifier }) => {
            if !db
                .delete_secret(space.trim_matches('/'), &identifier)
                .await?
            {
                anyhow::bail!("no secret '{identifier}' in '{space}'");
            }
            println!("deleted secret '{identifier}' in '{space}'");
        }
        Command::User(UserCmd::List) => {
            for u in db.list_users().await? {
                let roles: Vec<String> = db
                    .roles_of(&u.id)
                    .await?
                    .iter()
                    .map(|(p, r)| format!("{}@{p}", r.as_str()))
                    .collect();
                println!(
                    "{}\t{}\t{}",
                    u.name,
                    if u.is_admin { "admin" } else { "-" },
                    roles.join(",")
                );
            }
        }
    }
    Ok(())
}

/// Grants a role on a scope; a scope that does not exist yet is created, with a warning (a typo
/// would otherwise grant a role nobody notices is useless).
async fn grant(db: &Db, user_id: &str, role: &str, scope: &str) -> anyhow::Result<()> {
    let role = Role::parse(role).ok_or_else(|| anyhow::anyhow!("unknown role '{role}'"))?;
    let path = scope.trim_matches('/');
    if db.scope_by_path(path).await?.is_none() {
        eprintln!(
            "warning: scope '{path}' does not exist yet: created it (no registry is in it; check the spelling)"
        );
    }
    let s = db.ensure_scope(path).await?;
    db.grant_role(user_id, &s.id, role).await?;
    Ok(())
}
