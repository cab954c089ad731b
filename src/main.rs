//! The `wxfed` command. All logic lives in the library (`wxfed::cli`).

use std::process::ExitCode;

fn main() -> ExitCode {
    wxfed::cli::main()
}
