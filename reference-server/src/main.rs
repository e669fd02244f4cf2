//! `edge-server`: see `edge_server::cli`.

fn main() -> std::process::ExitCode {
    edge_server::cli::main()
}
