//! `dr-director`: the live LVS Direct Routing director; see [`dr_examples::director::app`]
//! for what it does and how to run it.

fn main() -> std::process::ExitCode {
    dr_examples::director::app::main()
}
