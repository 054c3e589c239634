fn main() {
    std::process::exit(numvault_cli::run(std::env::args_os()));
}
