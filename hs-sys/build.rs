//! Finds the system Hyperscan or Vectorscan (`libhs`) with pkg-config.

fn main() {
    if let Err(e) = pkg_config::Config::new()
        .atleast_version("5.4")
        .probe("libhs")
    {
        panic!(
            "Hyperscan/Vectorscan (libhs >= 5.4) not found by pkg-config ({e}).\nInstall it with: apt-get install libvectorscan-dev (or run scripts/setup)"
        );
    }
}
