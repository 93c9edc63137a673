//! Finds the system DPDK with pkg-config, generates bindings for a narrow allowlist, and
//! compiles C wrappers for DPDK's static inline fast-path functions (`wrap_static_fns`).

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=glue.c");
    let dpdk = match pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
    {
        Ok(l) => l,
        Err(e) => panic!(
            "DPDK >= 22.11 not found by pkg-config ({e}).\nInstall it with: apt-get install libdpdk-dev (or run scripts/setup)"
        ),
    };
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let includes: Vec<String> = dpdk
        .include_paths
        .iter()
        .map(|p| format!("-I{}", p.display()))
        .collect();

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&includes)
        .clang_arg("-march=corei7")
        .allowlist_function("rte_eal_(init|cleanup|mp_wait|remote_launch|wait_lcore|process_type)")
        .allowlist_function("rte_(get_next_lcore|lcore_id|lcore_count|get_main_lcore|get_next_lcore|socket_id|lcore_to_socket_id|lcore_is_enabled|strerror)")
        .allowlist_function("rte_(get_tsc_hz|rdtsc|delay_us_block)")
        .allowlist_function("rte_pktmbuf_(pool_create|alloc|free|free_bulk|alloc_bulk|append|reset)")
        .allowlist_function("rte_mempool_(in_use_count|avail_count|free|lookup)")
        .allowlist_function("rte_eth_(dev_configure|dev_start|dev_stop|dev_close|rx_queue_setup|tx_queue_setup|rx_burst|tx_burst|dev_info_get|promiscuous_enable|stats_get|stats_reset|dev_count_avail|dev_get_port_by_name|macaddr_get|link_get_nowait|dev_socket_id|find_next_owned_by|dev_is_valid_port)")
        .allowlist_function("rte_ring_(create|free|enqueue_burst|dequeue_burst|count|free_count|sp_enqueue_burst|sc_dequeue_burst|mp_enqueue_burst|mc_dequeue_burst)")
        .allowlist_function("rte_dev_probe|rte_vdev_init|rte_vdev_uninit")
        .allowlist_function("mimamori_.*")
        .allowlist_var("RTE_(MAX_ETHPORTS|MAX_LCORE|PKTMBUF_HEADROOM|MBUF_DEFAULT_BUF_SIZE|ETH_NAME_MAX_LEN|ETHER_ADDR_LEN)")
        .allowlist_var("RING_F_.*")
        .allowlist_var("SOCKET_ID_ANY|RTE_ETH_DEV_NO_OWNER")
        .allowlist_type("rte_eth_conf|rte_eth_stats|rte_eth_dev_info|rte_ether_addr|rte_eth_link|rte_eth_rxconf|rte_eth_txconf")
        .wrap_static_fns(true)
        .wrap_static_fns_path(out.join("static_fns"))
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .expect("bindgen failed on the DPDK headers");
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings");

    let mut cc = cc::Build::new();
    cc.file(out.join("static_fns.c"))
        .file("glue.c")
        .include(".");
    for p in &dpdk.include_paths {
        cc.include(p);
    }
    cc.flag("-march=corei7")
        .flag("-include")
        .flag("rte_config.h")
        .flag("-include")
        .flag("wrapper.h")
        .opt_level(3)
        .warnings(false);
    cc.compile("mimamori_dpdk_glue");
}
