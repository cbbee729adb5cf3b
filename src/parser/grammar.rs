//! The pest grammar for the static parts of the syntax (`grammar/dockerfile.pest`):
//! parser directives, heredoc markers and exec-form JSON arrays. The stateful
//! line handling around them is hand-written (see the module map in `mod.rs`).

/// Parser generated from `grammar/dockerfile.pest`.
#[derive(pest_derive::Parser)]
#[grammar = "../grammar/dockerfile.pest"]
pub struct DockerfileGrammar;

#[cfg(test)]
mod tests {
    use super::*;
    use pest::Parser;

    #[test]
    fn rules_accept_what_the_go_expressions_accept() {
        assert!(DockerfileGrammar::parse(Rule::directive, "#  Syntax =  x ").is_ok());
        assert!(DockerfileGrammar::parse(Rule::directive, "# =x").is_err());
        assert!(DockerfileGrammar::parse(Rule::heredoc_marker, "12<<-\t\"EOF\"").is_ok());
        assert!(DockerfileGrammar::parse(Rule::heredoc_marker, "<<a<b").is_err());
        assert!(
            DockerfileGrammar::parse(Rule::json_string_array, " [ \"a\\u00e9\" , \"\" ] ").is_ok()
        );
        assert!(DockerfileGrammar::parse(Rule::json_string_array, "[\"a\",]").is_err());
        assert!(DockerfileGrammar::parse(Rule::json_string_array, "[\"\\x\"]").is_err());
    }
}
