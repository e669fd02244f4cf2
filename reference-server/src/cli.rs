//! The `edge-server` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::{Application, db, shutdown_signal, telemetry};

mod demo;
mod fake_daraja;
mod fake_whatsapp;

/// The Edge reference server. Configuration comes from `EDGE_*` environment variables
/// (see the README); with none at all it runs on SQLite under ./data on 127.0.0.1:8080.
#[derive(Debug, Parser)]
#[command(name = "edge-server", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply pending database migrations, or show their status.
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// Platform operators (super_admin).
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Organizations (tenants).
    Org {
        #[command(subcommand)]
        action: OrgAction,
    },
    /// Generate realistic demo or benchmark data: organizations with members, prospects
    /// and relationships (Kenyan names, companies and numbers). Every member's password
    /// is EDGE_SEED_PASSWORD, or "edge demo password".
    Seed {
        /// Organizations to create.
        #[arg(long, default_value_t = 3)]
        orgs: u32,
        /// Prospects in all.
        #[arg(long, default_value_t = 300)]
        prospects: u64,
        /// Prospects of the first organization (the rest share the remainder evenly).
        #[arg(long)]
        largest: Option<u64>,
        /// Members per organization: an org_admin, two managers, then users.
        #[arg(long, default_value_t = 5)]
        members: u32,
        /// One relationship (a converted prospect) per this many prospects; 0 for none.
        #[arg(long, default_value_t = 10)]
        relationship_every: u64,
        /// Random seed: the same seed gives the same data.
        #[arg(long, default_value_t = 254)]
        seed: u64,
    },
    /// Run a fake Safaricom Daraja (M-Pesa) API, with callbacks, to test against.
    ///
    /// It answers tokens, STK push and query, C2B register and simulate, B2C, B2B,
    /// transaction status, account balance, reversal and QR, and posts the callbacks to
    /// the URLs in the requests (C2B: to the registered URLs), until Ctrl-C or SIGTERM.
    /// It prints the base URL to give a Daraja client, and logs every request and
    /// callback to stderr (never credentials).
    FakeDaraja(fake_daraja::FakeDarajaArgs),
    /// Run a fake WhatsApp Cloud API (Meta's Graph API), with signed webhooks, to test
    /// against.
    ///
    /// It answers message sends (and mark-as-read), media upload, lookup, download and
    /// delete, and phone-number lookups for the registered numbers, and posts signed
    /// status webhooks (sent, delivered, read, or failed) to --webhook-url, until Ctrl-C or
    /// SIGTERM. It prints the base URL to give a WhatsApp client, and logs every request
    /// and webhook to stderr (never tokens or the app secret).
    #[command(name = "fake-whatsapp")]
    FakeWhatsApp(fake_whatsapp::FakeWhatsAppArgs),
    /// Walk through Edge against the fake Daraja and fake WhatsApp, in this process.
    ///
    /// It starts the server with both fakes (SQLite in a temporary directory unless
    /// --database-url or --data-dir say otherwise), then over HTTP: signs up an
    /// organization, saves and verifies its M-Pesa settings, connects a WhatsApp number,
    /// tops the wallet up by STK push, lets a customer write in, sends a message that is
    /// charged and one that fails and is refunded, and moves a deal. Each step prints what
    /// happened and the wallet's balance, which the demo checks. Then it keeps serving,
    /// with the owner's access token printed, until Ctrl-C. Of the EDGE_* settings it reads
    /// only EDGE_LOG (default warn) and EDGE_LOG_FORMAT.
    Demo(demo::DemoArgs),
}

#[derive(Debug, Subcommand)]
enum AdminAction {
    /// Create a platform operator. The password is read from EDGE_ADMIN_PASSWORD, or
    /// from the first line of standard input.
    Create {
        /// The operator's email (their login).
        #[arg(long)]
        email: String,
        /// Their name.
        #[arg(long, default_value = "Platform operator")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum OrgAction {
    /// Create an organization; with --admin-email, print the first admin's invitation token.
    Create {
        /// Its name.
        #[arg(long)]
        name: String,
        /// URL-safe unique name (derived from the name if absent).
        #[arg(long)]
        slug: Option<String>,
        /// The code of an active plan (free, standard, enterprise, or one an operator
        /// added); default standard.
        #[arg(long)]
        plan: Option<String>,
        /// Currency (KES, UGX, TZS, RWF, USD).
        #[arg(long)]
        currency: Option<String>,
        /// Country (KE, UG, TZ, RW).
        #[arg(long)]
        country: Option<String>,
        /// Invite this email as the organization's first org_admin.
        #[arg(long)]
        admin_email: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum MigrateAction {
    /// Apply every pending migration (the default).
    Up,
    /// List applied and pending migrations; exits 1 if any are pending.
    Status,
}

/// Parses the command line and runs it on a new Tokio runtime.
pub fn main() -> ExitCode {
    let command = Cli::parse().command.unwrap_or(Command::Serve);
    let config = match &command {
        // The fakes need no database or server secrets: only the logging settings apply,
        // so a server configuration they do not use cannot stop them.
        Command::FakeDaraja(_) | Command::FakeWhatsApp(_) => Config::from_vars(
            std::env::vars().filter(|(name, _)| name == "EDGE_LOG" || name == "EDGE_LOG_FORMAT"),
        ),
        // The demo configures its own server; it must not pick up a real one's settings.
        Command::Demo(_) => Config::from_vars(demo::log_vars(std::env::vars())),
        _ => Config::from_env(),
    };
    let config = match config {
        Ok(config) => config,
        Err(err) => {
            eprintln!("edge-server: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format, &config.log_filter);
    crate::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("edge-server: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(command, config))
}

async fn run(command: Command, config: Config) -> ExitCode {
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate { action } => migrate(config, action.unwrap_or(MigrateAction::Up)).await,
        Command::Admin { action } => admin(config, action).await,
        Command::Org { action } => org(config, action).await,
        Command::Seed {
            orgs,
            prospects,
            largest,
            members,
            relationship_every,
            seed,
        } => {
            let plan = crate::seed::SeedPlan {
                orgs,
                prospects,
                largest,
                members,
                relationship_every,
                seed,
                password: std::env::var("EDGE_SEED_PASSWORD")
                    .ok()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| crate::seed::SeedPlan::default().password),
            };
            seed_data(config, plan).await
        }
        Command::FakeDaraja(args) => fake_daraja::run(args).await,
        Command::FakeWhatsApp(args) => fake_whatsapp::run(args).await,
        Command::Demo(args) => demo::run(args, &config).await,
    }
}

async fn seed_data(config: Config, plan: crate::seed::SeedPlan) -> ExitCode {
    let db = match migrated_db(&config).await {
        Ok(db) => db,
        Err(message) => {
            eprintln!("edge-server: {message}");
            return ExitCode::FAILURE;
        }
    };
    let started = std::time::Instant::now();
    let now = edge_core::Clock::now(&edge_core::SystemClock);
    let result = crate::seed::run(&db, &plan, now, |org| {
        let admin = org.members.first().map(|m| m.0.as_str()).unwrap_or("-");
        println!(
            "{} ({}): {} prospects, admin {admin}",
            org.name, org.id, org.prospects
        );
    })
    .await;
    match result {
        Ok(orgs) => {
            println!(
                "seeded {} organizations and {} prospects in {:.1} s; every member's password is {:?}",
                orgs.len(),
                plan.prospects,
                started.elapsed().as_secs_f64(),
                plan.password
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("edge-server: seeding failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Connects and checks that the schema is current, for the operator commands.
async fn migrated_db(config: &Config) -> Result<sea_orm::DatabaseConnection, String> {
    let db = db::connect(config)
        .await
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    if config.migrate_on_start {
        db::migrate(&db)
            .await
            .map_err(|e| format!("migration failed: {e}"))?;
    }
    let state = db::migration_state(&db)
        .await
        .map_err(|e| format!("cannot read migration status: {e}"))?;
    if !state.pending.is_empty() {
        return Err("migrations are pending: run `edge-server migrate` first".into());
    }
    Ok(db)
}

async fn admin(config: Config, action: AdminAction) -> ExitCode {
    let AdminAction::Create { email, name } = action;
    let password = match std::env::var("EDGE_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            eprintln!(
                "password (EDGE_ADMIN_PASSWORD not set; reading one line from standard input):"
            );
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).is_err() {
                eprintln!("edge-server: could not read a password");
                return ExitCode::FAILURE;
            }
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let db = match migrated_db(&config).await {
        Ok(db) => db,
        Err(message) => {
            eprintln!("edge-server: {message}");
            return ExitCode::FAILURE;
        }
    };
    match crate::identity::operator::create_operator(
        &db,
        edge_core::Clock::now(&edge_core::SystemClock),
        &email,
        &name,
        secrecy::SecretString::from(password),
    )
    .await
    {
        Ok((user, platform)) => {
            println!(
                "operator {} ({}) in organization {} ({})",
                user.email, user.id, platform.slug, platform.id
            );
            println!("log in with POST /api/v1/auth/login; the token's role is super_admin");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("edge-server: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn org(config: Config, action: OrgAction) -> ExitCode {
    let OrgAction::Create {
        name,
        slug,
        plan,
        currency,
        country,
        admin_email,
    } = action;
    let db = match migrated_db(&config).await {
        Ok(db) => db,
        Err(message) => {
            eprintln!("edge-server: {message}");
            return ExitCode::FAILURE;
        }
    };
    let input = crate::identity::operator::NewOrganization {
        name,
        slug,
        plan,
        currency,
        country,
        admin_email,
    };
    match crate::identity::operator::create_organization(
        &db,
        crate::audit::Actor::System,
        &crate::audit::ClientInfo::default(),
        edge_core::Clock::now(&edge_core::SystemClock),
        input,
    )
    .await
    {
        Ok(created) => {
            let org = &created.organization;
            println!(
                "organization {} ({}) created, plan {}",
                org.slug, org.id, org.plan
            );
            if let Some((token, expires_at)) = created.invitation {
                use secrecy::ExposeSecret as _;
                println!("first admin's invitation token (valid until {expires_at}; shown once):");
                println!("{}", token.expose_secret());
                println!(
                    "accept it with POST /api/v1/invitations/accept {{\"token\", \"name\", \"password\"}}"
                );
            }
            ExitCode::SUCCESS
        }
        Err(edge_core::Error::Validation(fields)) => {
            for f in fields {
                eprintln!("edge-server: {}: {}", f.field, f.message);
            }
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("edge-server: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> ExitCode {
    let environment = config.environment;
    let database = crate::config::redact_url(&config.database_url);
    let app = match Application::build(config).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = %err, "cannot start");
            eprintln!("edge-server: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        address = %app.address(),
        environment = environment.as_str(),
        database = %database,
        "edge-server listening on http://{}",
        app.address()
    );
    match app.run_until(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "server error");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: Config, action: MigrateAction) -> ExitCode {
    let db = match db::connect(&config).await {
        Ok(db) => db,
        Err(err) => {
            eprintln!("edge-server: cannot connect to the database: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let MigrateAction::Up = action
        && let Err(err) = db::migrate(&db).await
    {
        eprintln!("edge-server: migration failed: {err}");
        return ExitCode::FAILURE;
    }
    let state = match db::migration_state(&db).await {
        Ok(state) => state,
        Err(err) => {
            eprintln!("edge-server: cannot read migration status: {err}");
            return ExitCode::FAILURE;
        }
    };
    for name in &state.applied {
        println!("applied  {name}");
    }
    for name in &state.pending {
        println!("pending  {name}");
    }
    println!(
        "{} applied, {} pending",
        state.applied.len(),
        state.pending.len()
    );
    if state.pending.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
