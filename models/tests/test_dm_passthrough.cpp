// Unit tests for dm_passthrough.hpp (drivers/md/dm-table.c, block/blk-crypto-profile.c).
#include "icemu/models/dm_passthrough.hpp"

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

using namespace icemu::models;
using namespace icemu::models::dm;
using ufshci::parse_crypto_caps;

namespace {
constexpr unsigned kXts = static_cast<unsigned>(Mode::aes_256_xts);

CryptoCaps ufs(std::string_view caps) {
    return ufs_profile(parse_crypto_caps(caps), 32);
}
CryptoCaps cqhci_like(std::uint32_t xts_mask) { // an eMMC/CQHCI child: 4 DUN bytes
    CryptoCaps c;
    c.modes[kXts] = xts_mask;
    c.max_dun_bytes = 4;
    c.num_slots = 16;
    return c;
}
Table linear(const std::string& dev) {
    return Table{{Target{"linear", {dev}}}};
}
} // namespace

TEST_CASE("ufshcd counts only AES-XTS-256 caps and scales SDUSB by 512", "[dm]") {
    // ufshcd_hba_init_crypto_capabilities: SDUSB=0x08 means 4096-byte data units only ->
    // modes/AES-256-XTS = 0x1000.
    const auto p = ufs("aes-xts-256:0x08/aes-xts-128:0x0f/aes-ecb-256:0x0f");
    CHECK(p.modes[kXts] == 0x1000u);
    CHECK(p.max_dun_bytes == 8);
    CHECK(ufs("aes-xts-256:0x0f").modes[kXts] == 0x1e00u); // 512..4096
    CHECK(ufs("aes-xts-128:0x0f").empty());
}

TEST_CASE("the passthrough target list depends on the kernel version", "[dm]") {
    for (auto t : {"linear", "flakey"}) {
        CHECK(passes_crypto(t, kernel::rules_for("6.12.117")));
        CHECK(passes_crypto(t, kernel::rules_for("7.3.4")));
    }
    for (auto t : {"striped", "thin-pool", "thin"}) {
        CHECK_FALSE(passes_crypto(t, kernel::rules_for("6.12.117")));
        CHECK(passes_crypto(t, kernel::rules_for("7.3.4")));
    }
    for (auto t : {"crypt", "delay", "zero", "error", "mirror", "raid", "snapshot", "verity",
                   "integrity", "multipath", "inlinecrypt"}) {
        CHECK_FALSE(passes_crypto(t, kernel::rules_for("6.12.117")));
        CHECK_FALSE(passes_crypto(t, kernel::rules_for("7.3.4")));
    }
}

TEST_CASE("a dm profile is the intersection of its devices' profiles", "[dm]") {
    const DeviceProfiles devs{{"ufs0", ufs("aes-xts-256:0x0f")},
                              {"ufs1", ufs("aes-xts-256:0x08")},
                              {"mmc0", cqhci_like(0x1200)}};
    const Table t{{Target{"linear", {"ufs0"}}, Target{"linear", {"ufs1"}}}};
    const auto p = construct_caps(t, devs, kernel::rules_for("6.12.117"));
    CHECK(p.modes[kXts] == 0x1000u);
    CHECK(p.max_dun_bytes == 8);
    CHECK(p.num_slots == 0);
    // dm_table_construct_crypto_profile intersects: UFS (8 bytes) + CQHCI (4 bytes) ->
    // max_dun_bits 32.
    const auto q = construct_caps(Table{{Target{"linear", {"ufs0"}}, Target{"linear", {"mmc0"}}}},
                                  devs, kernel::rules_for("6.12.117"));
    CHECK(q.max_dun_bytes == 4);
    CHECK(q.modes[kXts] == 0x1200u);
    CHECK(sysfs_view(q, true, kernel::rules_for("6.12.117")).max_dun_bits == 32);
}

TEST_CASE("a device without crypto or a non-passthrough target clears everything", "[dm]") {
    const DeviceProfiles devs{{"ufs0", ufs("aes-xts-256:0x0f")}, {"vda", std::nullopt}};
    CHECK(construct_caps(Table{{Target{"linear", {"ufs0"}}, Target{"linear", {"vda"}}}}, devs,
                         kernel::rules_for("6.12.117"))
              .empty());
    CHECK(construct_caps(Table{{Target{"delay", {"ufs0"}}}}, devs, kernel::rules_for("6.12.117"))
              .empty());
    CHECK(construct_caps(Table{{Target{"striped", {"ufs0"}}}}, devs, kernel::rules_for("6.12.117"))
              .empty());
    CHECK_FALSE(
        construct_caps(Table{{Target{"striped", {"ufs0"}}}}, devs, kernel::rules_for("7.3.4"))
            .empty());
}

TEST_CASE("7.x intersects key types and 6.12 ignores them", "[dm]") {
    CryptoCaps wrapped = cqhci_like(0x1000);
    wrapped.max_dun_bytes = 8;
    wrapped.key_types = kKeyTypeHwWrapped;
    const DeviceProfiles devs{{"ufs0", ufs("aes-xts-256:0x08")}, {"qcom", wrapped}};
    const auto p = construct_caps(Table{{Target{"linear", {"ufs0", "qcom"}}}}, devs,
                                  kernel::rules_for("7.3.4"));
    CHECK(p.key_types == 0);
    // Reload from a raw-key live profile to one without raw keys is rejected in 7.x only.
    const Profile live = ufs("aes-xts-256:0x08");
    CHECK_FALSE(has_capabilities(p, live, kernel::rules_for("7.3.4")));
    CHECK(has_capabilities(p, live, kernel::rules_for("6.12.117")));
}

TEST_CASE("a controller's key types come from its realize event (6.15+)", "[dm]") {
    const auto k7 = kernel::rules_for("7.3.4");
    const auto k612 = kernel::rules_for("6.12.117");
    events::Realize plain, both, wrapped_only;
    both.wrapped_keys = true;
    both.raw_keys = true;
    wrapped_only.wrapped_keys = true;
    wrapped_only.raw_keys = false;
    CHECK(key_types_of(plain, k7) == kKeyTypeRaw);
    CHECK(key_types_of(both, k7) == (kKeyTypeRaw | kKeyTypeHwWrapped));
    CHECK(key_types_of(wrapped_only, k7) == kKeyTypeHwWrapped);
    CHECK(key_types_of(wrapped_only, k612) == kKeyTypeRaw); // no key types before 6.15
}

TEST_CASE("7.x: a reload onto a raw-only controller drops hardware-wrapped keys: EINVAL", "[dm]") {
    // Scenario 18: dm over a controller with the key manager, reloaded onto one without it.
    const auto k7 = kernel::rules_for("7.3.4");
    events::Realize km;
    km.wrapped_keys = true;
    km.raw_keys = true;
    const auto caps = parse_crypto_caps("aes-xts-256:0x08");
    const DeviceProfiles devs{{"ufs0", ufs_profile(caps, 8, key_types_of(km, k7))},
                              {"ufs1", ufs_profile(caps, 8, key_types_of(events::Realize{}, k7))}};
    DmDevice d(k7);
    REQUIRE(d.load(linear("ufs0"), devs) == 0);
    REQUIRE(d.resume());
    CHECK(d.sysfs().hw_wrapped_keys);
    CHECK(d.load(linear("ufs1"), devs) == -kEINVAL);
    CHECK(d.load(linear("ufs0"), devs) == 0);
    // The other way round keeps every key type: accepted.
    DmDevice r(k7);
    REQUIRE(r.load(linear("ufs1"), devs) == 0);
    REQUIRE(r.resume());
    CHECK(r.load(linear("ufs0"), devs) == 0);
}

TEST_CASE("a reload with fewer capabilities is rejected with EINVAL at load", "[dm]") {
    const DeviceProfiles devs{{"ufs0", ufs("aes-xts-256:0x0f")},
                              {"ufs1", ufs("aes-xts-256:0x08")},
                              {"ufs2", ufs("aes-xts-256:0xff")},
                              {"vda", std::nullopt}};
    DmDevice d(kernel::rules_for("6.12.117"));
    REQUIRE(d.load(linear("ufs0"), devs) == 0);
    REQUIRE(d.resume());
    CHECK(d.load(linear("ufs1"), devs) == -kEINVAL); // loses 512..2048
    CHECK(d.load(linear("vda"), devs) == -kEINVAL);  // loses everything
    CHECK(d.load(Table{{Target{"crypt", {"ufs0"}}}}, devs) == -kEINVAL);
    CHECK_FALSE(d.inactive().has_value());
    CHECK(d.load(linear("ufs0"), devs) == 0); // equal
    CHECK(d.load(linear("ufs2"), devs) == 0); // more
    REQUIRE(d.resume());
    CHECK(d.queue_profile()->modes[kXts] == 0x1fe00u); // widened at resume
    CHECK(d.live()->targets[0].devices[0] == "ufs2");
}

TEST_CASE("the reload rule is checked against the queue profile set by the first load", "[dm]") {
    const DeviceProfiles devs{{"ufs0", ufs("aes-xts-256:0x0f")}, {"vda", std::nullopt}};
    DmDevice d(kernel::rules_for("6.12.117"));
    REQUIRE(d.load(linear("ufs0"), devs) == 0);
    // Not resumed yet, but dm_setup_md_queue already gave the queue the first table's profile.
    CHECK(d.load(linear("vda"), devs) == -kEINVAL);
}

TEST_CASE("a device whose first table had no crypto can load anything but shows no sysfs dir",
          "[dm]") {
    const DeviceProfiles devs{{"ufs0", ufs("aes-xts-256:0x0f")}, {"vda", std::nullopt}};
    DmDevice d(kernel::rules_for("6.12.117"));
    REQUIRE(d.load(linear("vda"), devs) == 0);
    REQUIRE(d.resume());
    CHECK_FALSE(d.queue_profile().has_value());
    CHECK(d.load(linear("ufs0"), devs) == 0);
    REQUIRE(d.resume());
    CHECK(d.queue_profile().has_value()); // crypto works ...
    CHECK_FALSE(d.sysfs().present);       // ... but queue/crypto was never created
}

TEST_CASE("sysfs shows num_keyslots 0, max_dun_bits and the non-zero mode masks", "[dm]") {
    const DeviceProfiles devs{{"ufs0", ufs("aes-xts-256:0x08")}};
    DmDevice d(kernel::rules_for("7.3.4"));
    REQUIRE(d.load(linear("ufs0"), devs) == 0);
    REQUIRE(d.resume());
    const auto s = d.sysfs();
    CHECK(s.present);
    CHECK(s.num_keyslots == 0);
    CHECK(s.max_dun_bits == 64);
    CHECK(s.modes == std::map<std::string, std::uint32_t>{{"AES-256-XTS", 0x1000}});
    CHECK(s.raw_keys);
    CHECK_FALSE(s.hw_wrapped_keys);
    CHECK_FALSE(sysfs_view(*d.queue_profile(), true, kernel::rules_for("6.12.117")).raw_keys);
}

TEST_CASE("eviction reaches every device of the live table and not the old table's", "[dm]") {
    const DeviceProfiles devs{{"ufs0", ufs("aes-xts-256:0x0f")},
                              {"ufs1", ufs("aes-xts-256:0x0f")},
                              {"ufs2", ufs("aes-xts-256:0x0f")}};
    DmDevice d(kernel::rules_for("6.12.117"));
    CHECK(d.evict_fanout().empty()); // no live table yet
    REQUIRE(d.load(Table{{Target{"linear", {"ufs0"}}, Target{"linear", {"ufs1"}}}}, devs) == 0);
    CHECK(d.evict_fanout().empty()); // loaded but not resumed
    REQUIRE(d.resume());
    CHECK(d.evict_fanout() == std::vector<std::string>{"ufs0", "ufs1"});
    REQUIRE(d.load(linear("ufs2"), devs) == 0);
    CHECK(d.evict_fanout() == std::vector<std::string>{"ufs0", "ufs1"}); // inactive ignored
    REQUIRE(d.resume());
    CHECK(d.evict_fanout() == std::vector<std::string>{"ufs2"}); // ufs0/ufs1 keep stale slots
}

TEST_CASE("a dm device stacked on another dm device intersects with its queue profile", "[dm]") {
    const DeviceProfiles leaves{{"ufs0", ufs("aes-xts-256:0x0f")}};
    DmDevice lower(kernel::rules_for("6.12.117"));
    REQUIRE(lower.load(linear("ufs0"), leaves) == 0);
    REQUIRE(lower.resume());
    DeviceProfiles devs = leaves;
    devs["dm-0"] = lower.queue_profile();
    DmDevice upper(kernel::rules_for("6.12.117"));
    REQUIRE(upper.load(Table{{Target{"flakey", {"dm-0"}}}}, devs) == 0);
    REQUIRE(upper.resume());
    CHECK(upper.queue_profile()->modes[kXts] == 0x1e00u);
}

// ---- table lines --------------------------------------------------------------------------------

TEST_CASE("table lines: iterate_devices tokens and mapping fields per target type", "[dm][table]") {
    const Segment lin = parse_segment(0, 100, "linear", "/dev/sdb 2048");
    CHECK(lin.device_tokens == std::vector<std::string>{"/dev/sdb"});
    CHECK(lin.dev == "/dev/sdb");
    CHECK(lin.offset == 2048);
    CHECK(parse_segment(0, 8, "linear", "/dev/sdb x").dev.empty()); // offset not a number
    // thin-pool: only the data device (pool_iterate_devices); thin: the pool
    CHECK(parse_segment(0, 8, "thin-pool", "/dev/meta /dev/data 128 0").device_tokens ==
          std::vector<std::string>{"/dev/data"});
    CHECK(parse_segment(0, 8, "thin", "/dev/mapper/pool 1").device_tokens ==
          std::vector<std::string>{"/dev/mapper/pool"});
    // delay: 1-3 device groups; only one group maps like linear
    const Segment d1 = parse_segment(0, 8, "delay", "/dev/a 0 10");
    CHECK(d1.dev == "/dev/a");
    const Segment d2 = parse_segment(0, 8, "delay", "/dev/a 0 10 /dev/b 5 20");
    CHECK(d2.device_tokens == std::vector<std::string>{"/dev/a", "/dev/b"});
    CHECK(d2.dev.empty());
    const Segment st = parse_segment(0, 512, "striped", "2 128 /dev/a 0 /dev/b 64");
    CHECK(st.device_tokens == std::vector<std::string>{"/dev/a", "/dev/b"});
    CHECK(st.chunk == 128);
    REQUIRE(st.stripes.size() == 2);
    CHECK(st.stripes[1] == std::pair<std::string, std::uint64_t>{"/dev/b", 64});
    CHECK(parse_segment(0, 512, "striped", "3 128 /dev/a 0 /dev/b 64").stripes.empty());
    const Segment ic =
        parse_segment(0, 64, "inlinecrypt",
                      "aes-xts-plain64 000102030405060708090a0b0c0d0e0f 64 /dev/mapper/lin 8 2 "
                      "sector_size:4096 iv_large_sectors");
    REQUIRE(ic.inline_crypt);
    CHECK(ic.inline_crypt->key.size() == 16);
    CHECK(ic.inline_crypt->iv_offset == 64);
    CHECK(ic.inline_crypt->sector_bits == 12);
    CHECK(ic.dev == "/dev/mapper/lin");
    CHECK(ic.offset == 8);
    CHECK(ic.device_tokens == std::vector<std::string>{"/dev/mapper/lin"});
    // a keyring key has no bytes to model
    CHECK_FALSE(
        parse_segment(0, 64, "inlinecrypt", "aes-xts-plain64 :64:logon:k 0 /dev/x 0").inline_crypt);
    CHECK(parse_segment(0, 8, "zero", "a b").device_tokens == std::vector<std::string>{"a", "b"});
}

TEST_CASE("table lines: byte ranges map through linear and striped segments", "[dm][table]") {
    // linear segment at dm sectors [100, 200) onto /dev/a from sector 1000
    const Segment lin = parse_segment(100, 100, "linear", "/dev/a 1000");
    auto m = map_bytes(lin, 50 * 512, 100 * 512); // dm sectors [50, 150): half inside
    REQUIRE(m.size() == 1);
    CHECK(m[0].dev == "/dev/a");
    CHECK(m[0].dev_off == 1000 * 512);
    CHECK(m[0].len == 50 * 512);
    CHECK(m[0].dm_off == 100 * 512);
    CHECK(map_bytes(lin, 0, 100 * 512).empty());
    // striped over 2 devices, 8-sector (4 KiB) chunks: chunk c -> stripe c % 2, row c / 2
    const Segment st = parse_segment(0, 64, "striped", "2 8 /dev/a 0 /dev/b 16");
    m = map_bytes(st, 2048, 3 * 4096); // from the middle of chunk 0 to the middle of chunk 3
    REQUIRE(m.size() == 4);
    CHECK(
        (m[0].dev == "/dev/a" && m[0].dev_off == 2048 && m[0].len == 2048 && m[0].dm_off == 2048));
    CHECK((m[1].dev == "/dev/b" && m[1].dev_off == 16 * 512 && m[1].len == 4096));
    CHECK((m[2].dev == "/dev/a" && m[2].dev_off == 4096 && m[2].len == 4096));
    CHECK((m[3].dev == "/dev/b" && m[3].dev_off == 16 * 512 + 4096 && m[3].len == 2048 &&
           m[3].dm_off == 3 * 4096));
    // types that do not map (crypt rewrites the data; thin allocates dynamically)
    CHECK(map_bytes(parse_segment(0, 64, "thin", "/dev/p 1"), 0, 4096).empty());
}
