//! The OpenAPI document is committed indented, for reading and review; the
//! api serves the same JSON without the indentation, which is half its bytes
//! (272 KiB against 133) in the binary.

use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=openapi.json");
    let text = fs::read_to_string("openapi.json").expect("reading functions/api/openapi.json");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("functions/api/openapi.json is not JSON");
    let out = Path::new(&env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("openapi.json");
    fs::write(out, serde_json::to_string(&doc).expect("a JSON value serializes"))
        .expect("writing OUT_DIR/openapi.json");
}
