//! The build context: the directory tree a build may read, and the rules
//! (`.dockerignore`) that decide which of its files are sent to the build.

pub mod dockerignore;
