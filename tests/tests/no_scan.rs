//! No request path reads DynamoDB with Scan: every access pattern is a GetItem or a Query on a
//! key or index (see the README's table layout). This walks the product's sources.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_product_code_calls_dynamodb_scan() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![];
    rust_files(&root.join("shared/src"), &mut files);
    rust_files(&root.join("functions"), &mut files);
    assert!(files.len() > 10, "{files:?}");
    for file in files {
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            assert!(
                !code.contains(".scan()")
                    && !code.contains("ScanInput")
                    && !code.contains("operation::scan"),
                "{}:{}: DynamoDB Scan on a request path: {line}",
                file.display(),
                n + 1
            );
        }
    }
}
