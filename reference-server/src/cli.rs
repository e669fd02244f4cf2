//! The `edge-server` command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::{Application, db, shutdown_signal, telemetry};

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
    let cli = Cli::parse();
    let config = match Config::from_env() {
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
    runtime.block_on(run(cli, config))
}

async fn run(cli: Cli, config: Config) -> ExitCode {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate { action } => migrate(config, action.unwrap_or(MigrateAction::Up)).await,
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
