//! Links the system spandsp (Debian: apt-get install libspandsp-dev).
fn main() {
    println!("cargo:rustc-link-lib=spandsp");
}
