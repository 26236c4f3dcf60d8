//! Reading a command's options: `--name value` pairs, each value checked
//! with an error that names the option.

use std::time::Duration;

/// The options after a command's name, read one at a time.
#[derive(Debug)]
pub struct Args<'a> {
    rest: std::slice::Iter<'a, String>,
    /// The option being read, for error messages.
    current: &'a str,
}

impl<'a> Args<'a> {
    pub fn new(args: &'a [String]) -> Self {
        Self { rest: args.iter(), current: "" }
    }

    /// The next option's name.
    pub fn next_option(&mut self) -> Option<&'a str> {
        self.current = self.rest.next()?;
        Some(self.current)
    }

    /// The value of the current option; `what` says what it should be.
    ///
    /// # Errors
    /// When the value is missing.
    pub fn value(&mut self, what: &str) -> Result<String, String> {
        self.rest.next().cloned().ok_or_else(|| format!("{} needs {what}", self.current))
    }

    /// The value of the current option as a whole number.
    ///
    /// # Errors
    /// When it is missing or not a number.
    pub fn number<T: TryFrom<u64>>(&mut self, what: &str) -> Result<T, String> {
        let text = self.value(what)?;
        let number: u64 = text.parse().map_err(|_| format!("{}: {text:?} is not a number", self.current))?;
        T::try_from(number).map_err(|_| format!("{}: {number} is too large", self.current))
    }

    /// The value of the current option as whole seconds.
    ///
    /// # Errors
    /// As [`Args::number`].
    pub fn seconds(&mut self) -> Result<Duration, String> {
        self.number("seconds").map(Duration::from_secs)
    }

    /// The error for an option the command does not know.
    pub fn unknown(&self) -> String {
        format!("unknown argument {:?}", self.current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_numbers_and_their_errors_name_the_option() {
        let given: Vec<String> = ["--count", "12", "--count", "lots", "--count"].map(String::from).to_vec();
        let mut args = Args::new(&given);
        assert_eq!(args.next_option(), Some("--count"));
        assert_eq!(args.number::<usize>("a count"), Ok(12));
        args.next_option();
        assert_eq!(args.number::<usize>("a count"), Err("--count: \"lots\" is not a number".into()));
        args.next_option();
        assert_eq!(args.value("a count"), Err("--count needs a count".into()));
        assert_eq!(args.unknown(), "unknown argument \"--count\"");
        assert_eq!(args.next_option(), None);
    }
}
