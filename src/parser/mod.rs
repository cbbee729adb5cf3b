//! Dockerfile text → typed AST with spans. Knows nothing of images or builds.
