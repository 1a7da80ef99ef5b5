//! The `conductor` binary: see `conductor --help`.

fn main() -> std::process::ExitCode {
    conductor::cli::main()
}
