//! kiln.toml: the whole loader (TOML, schema, packages, images, platforms, files, globs),
//! from text. The project folder holds one file an input may include, `images.toml`, so
//! includes are reached too.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use kiln::project::config::Project;
use libfuzzer_sys::fuzz_target;

const INCLUDED: &str = r#"
[images.extra]
package = "default"
tag = "1"
"#;

fn project_dir() -> &'static Path {
    static READY: OnceLock<()> = OnceLock::new();
    let dir = kiln_fuzz::scratch_dir();
    READY.get_or_init(|| {
        std::fs::write(dir.join("images.toml"), INCLUDED).expect("write images.toml");
    });
    dir
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(project) = Project::from_text(project_dir(), text.to_owned()) {
        for package in project.packages.values() {
            let _ = package.store_label();
            let _ = package.programs().count();
        }
        for image in project.images.values() {
            let _ = image.tag();
        }
    }
});
