//! HTML → PDF with headless Chromium (Debian's `chromium`): the page's own A4 print CSS
//! decides the layout; Japanese text needs a CJK font (`fonts-noto-cjk`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Chromium to use: `$MIMAMORI_CHROMIUM`, else `chromium` or `chromium-browser` on
/// the `PATH`.
pub fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MIMAMORI_CHROMIUM") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Prints `html` to a PDF at `out`.
pub fn html_to_pdf(html: &str, out: &Path) -> anyhow::Result<()> {
    let Some(bin) = chromium() else {
        anyhow::bail!(
            "{}: writing a PDF needs headless Chromium, and none was found (looked for $MIMAMORI_CHROMIUM, then chromium and chromium-browser on PATH); install it (Debian: apt-get install chromium fonts-noto-cjk) or write the HTML instead with -o report.html",
            out.display()
        );
    };
    let work = std::env::temp_dir().join(format!(
        "mimamori-report-{}-{}",
        std::process::id(),
        crate::db::now()
    ));
    std::fs::create_dir_all(&work)?;
    let result = print(&bin, html, out, &work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn print(bin: &Path, html: &str, out: &Path, work: &Path) -> anyhow::Result<()> {
    let page = work.join("report.html");
    std::fs::write(&page, html)?;
    let out_abs = if out.is_absolute() {
        out.to_path_buf()
    } else {
        std::env::current_dir()?.join(out)
    };
    let _ = std::fs::remove_file(&out_abs);
    let mut child = Command::new(bin)
        .arg("--headless=new")
        .arg("--no-sandbox")
        .arg("--disable-gpu")
        .arg("--disable-dev-shm-usage")
        .arg("--no-first-run")
        .arg("--no-pdf-header-footer")
        .arg(format!(
            "--user-data-dir={}",
            work.join("profile").display()
        ))
        .arg(format!("--print-to-pdf={}", out_abs.display()))
        .arg(format!("file://{}", page.display()))
        .env("HOME", work)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(work.join("chromium.log"))?)
        .spawn()
        .map_err(|e| anyhow::anyhow!("{}: cannot start: {e}", bin.display()))?;
    let started = Instant::now();
    let limit = Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!(
                "{}: no PDF after {} s; stopped it",
                bin.display(),
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(work.join("chromium.log")).unwrap_or_default();
    let ok = std::fs::read(&out_abs)
        .map(|b| b.starts_with(b"%PDF"))
        .unwrap_or(false);
    if !status.success() || !ok {
        let tail: String = stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        anyhow::bail!(
            "{} did not write a PDF to {} ({status}): {tail}",
            bin.display(),
            out_abs.display()
        );
    }
    Ok(())
}
