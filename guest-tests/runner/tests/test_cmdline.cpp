#include <algorithm>
#include <catch2/catch_test_macros.hpp>
#include <stdexcept>
#include <string>

#include "cmdline.hpp"

using namespace icemu::runner;

static Scenario two_ufs() {
    return parse_scenario(json::parse(R"({
	  "name": "c", "machine": {"smp": 2, "append": "foo=1"},
	  "controllers": [
	    {"id": "ufs0", "keyslots": 8, "caps": "aes-xts-256:0x0f", "mcq": true, "mcq_maxq": 2,
	     "lus": [{"name": "ua", "size": "16M"}]},
	    {"id": "ufs1", "crypto": false, "lus": [{"name": "ub", "lun": 1, "size": "16M"}]}],
	  "virtio_disks": [{"name": "vd", "size": "8M"}],
	  "steps": [{"op": "sysinfo"}]})"));
}

static bool has(const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

static bool has_substr(const std::vector<std::string>& v, const std::string& x) {
    return std::any_of(v.begin(), v.end(),
                       [&](const std::string& s) { return s.find(x) != std::string::npos; });
}

MachinePaths paths(std::string q, std::string k, std::string i, std::string a) {
    MachinePaths p;
    p.qemu = std::move(q);
    p.kernel = std::move(k);
    p.initrd = std::move(i);
    p.dir = std::move(a);
    return p;
}

EngineOptions engine(bool props, bool off) {
    EngineOptions e;
    e.props_supported = props;
    e.force_off = off;
    return e;
}

TEST_CASE("the command line has a fast minimal q35 machine with QMP and the guest port") {
    MachinePaths p = paths("/q/qemu-system-x86_64", "/k/bzImage", "/i/initrd.gz", "/a");
    auto a = qemu_argv(two_ufs(), p, EngineOptions{});
    CHECK(a[0] == "/q/qemu-system-x86_64");
    for (const char* x : {"-nodefaults", "-no-reboot", "tcg", "q35"})
        CHECK(has(a, x));
    CHECK(has(a, "socket,id=qmp,path=/a/qmp.sock"));
    CHECK(has(a, "virtserialport,bus=vser.0,chardev=guest,name=org.icemu.0"));
    CHECK(has(a, "console=ttyS0 quiet panic=-1 no_timer_check unknown_nmi_panic panic_print=0x40 "
                 "rdinit=/init foo=1"));
    CHECK(has(a, "2")); // -smp
}

TEST_CASE("each controller gets its own crypto properties, event log and LUs") {
    MachinePaths p = paths("/q", "/k", "/i", "/a");
    auto a = qemu_argv(two_ufs(), p, EngineOptions{});
    CHECK(has(a, "ufs,id=ufs0,serial=icemu-ufs0,addr=0x04,mcq=true,mcq-maxq=2,crypto=on,crypto-log="
                 "clog-ufs0,"
                 "crypto-keyslots=8,crypto-caps=aes-xts-256:0x0f"));
    CHECK(has(a, "file,id=clog-ufs0,path=/a/ufs0.events.jsonl"));
    CHECK(has(a, "ufs,id=ufs1,serial=icemu-ufs1,addr=0x05,crypto=off"));
    CHECK_FALSE(has_substr(a, "clog-ufs1"));
    CHECK(has(a, "ufs-lu,bus=ufs1,lun=1,drive=ufs1-lu1"));
    CHECK(has(a, "if=none,id=ufs1-lu1,file=/a/ufs1-lu1-ub.img,format=raw"));
    CHECK(has(a, "virtio-blk-pci,drive=vd-vd,addr=0x0c"));
}

TEST_CASE("an engine-less QEMU gets no crypto properties at all; --crypto off turns them off") {
    MachinePaths p = paths("/q", "/k", "/i", "/a");
    auto a = qemu_argv(two_ufs(), p, engine(false, false));
    CHECK_FALSE(has_substr(a, "crypto"));
    auto b = qemu_argv(two_ufs(), p, engine(true, true));
    CHECK(has(b, "ufs,id=ufs0,serial=icemu-ufs0,addr=0x04,mcq=true,mcq-maxq=2,crypto=off"));
}

TEST_CASE("PCI addresses of controllers and disks are fixed by their index") {
    CHECK(ufs_pci_addr(0) == "0000:00:04.0");
    CHECK(ufs_pci_addr(3) == "0000:00:07.0");
    CHECK(virtio_blk_pci_addr(1) == "0000:00:0d.0");
}

TEST_CASE("shell_join quotes only what needs quoting") {
    CHECK(shell_join({"qemu", "-append", "console=ttyS0 quiet", "it's"}) ==
          "qemu -append 'console=ttyS0 quiet' 'it'\\''s'");
}

TEST_CASE("an emmc controller is sdhci-pci with a CQHCI, a soldered eMMC and the same crypto "
          "properties") {
    Scenario s = parse_scenario(json::parse(R"({
	  "name": "e",
	  "controllers": [
	    {"id": "ufs0", "lus": [{"name": "ua", "size": "16M"}]},
	    {"id": "emmc0", "type": "emmc", "keyslots": 4, "caps": "aes-xts-256:0x09", "name": "ea", "size": "64M"}],
	  "steps": [{"op": "sysinfo"}]})"));
    MachinePaths p = paths("/q", "/k", "/i", "/a");
    auto a = qemu_argv(s, p, EngineOptions{});
    CHECK(has(a, "if=none,id=emmc0-emmc,file=/a/emmc0-lu0-ea.img,format=raw"));
    CHECK(has(a, "sdhci-pci,id=emmc0,addr=0x05,cqhci=on,emmc-drive=emmc0-emmc,crypto=on,crypto-log="
                 "clog-emmc0,"
                 "crypto-keyslots=4,crypto-caps=aes-xts-256:0x09"));
    CHECK(has(a, "file,id=clog-emmc0,path=/a/emmc0.events.jsonl"));
    CHECK_FALSE(has_substr(a, "bus=emmc0"));
    auto b = qemu_argv(s, p, engine(true, true));
    CHECK(has(b, "sdhci-pci,id=emmc0,addr=0x05,cqhci=on,emmc-drive=emmc0-emmc,crypto=off"));
}

TEST_CASE("KVM adds -cpu host; TCG does not") {
    MachinePaths p = paths("/q", "/k", "/i", "/a");
    CHECK_FALSE(has(qemu_argv(two_ufs(), p, EngineOptions{}), "host"));
    p.accel = "kvm";
    auto a = qemu_argv(two_ufs(), p, EngineOptions{});
    CHECK(has(a, "kvm"));
    CHECK(has(a, "host"));
    CHECK_FALSE(has(a, "tcg"));
}

TEST_CASE("pci-identity goes to every UFS controller and never to an eMMC") {
    Scenario s = parse_scenario(json::parse(R"({
	  "name": "e",
	  "controllers": [
	    {"id": "ufs0", "lus": [{"name": "ua", "size": "16M"}]},
	    {"id": "emmc0", "type": "emmc", "name": "ea", "size": "64M"}],
	  "steps": [{"op": "sysinfo"}]})"));
    EngineOptions e;
    e.pci_identity = "intel-mtl";
    auto a = qemu_argv(s, paths("/q", "/k", "/i", "/a"), e);
    CHECK(has(a, "ufs,id=ufs0,serial=icemu-ufs0,addr=0x04,pci-identity=intel-mtl,crypto=on,"
                 "crypto-log=clog-ufs0"));
    CHECK(has(a, "sdhci-pci,id=emmc0,addr=0x05,cqhci=on,emmc-drive=emmc0-emmc,crypto=on,crypto-log="
                 "clog-emmc0"));
}

TEST_CASE("the shell's disk locations name each LU by PCI address and LUN, an eMMC by address") {
    Scenario s = parse_scenario(json::parse(R"({
	  "name": "e",
	  "controllers": [
	    {"id": "ufs0", "lus": [{"name": "ua", "size": "16M"}, {"name": "ub", "lun": 2, "size": "16M"}]},
	    {"id": "emmc0", "type": "emmc", "name": "ea", "size": "64M"}],
	  "virtio_disks": [{"name": "vd", "size": "8M"}],
	  "steps": [{"op": "sysinfo"}]})"));
    CHECK(disk_locations(s) ==
          "ua@0000:00:04.0:0,ub@0000:00:04.0:2,ea@0000:00:05.0,vd@0000:00:0c.0");
}

TEST_CASE("a command-line timeout is a plain positive number of seconds; anything else is named") {
    CHECK(parse_seconds("300") == 300);
    CHECK(parse_seconds("1.5") == 1.5);
    for (const char* bad : {"abc", "5abc", "", " 5", "5 ", "-1", "0", "0.0", "inf", "nan", "0x10",
                            "1e3", "1e999", "."}) {
        INFO('\'' << bad << '\'');
        try {
            (void)parse_seconds(bad);
            FAIL("accepted");
        } catch (const std::invalid_argument& e) {
            const std::string msg = e.what();
            CHECK(msg.find(std::string("'") + bad + "'") == 0);
            CHECK(msg.find('\n') == std::string::npos);
        }
    }
}

TEST_CASE("a controller with the key manager gets its properties and its wrapping key as a "
          "secret object") {
    Scenario s = parse_scenario(json::parse(R"({
	  "name": "w",
	  "controllers": [
	    {"id": "ufs0", "wrapped_keys": true, "raw_keys": false,
	     "wrapping_key": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
	     "lus": [{"name": "ua", "size": "16M"}]},
	    {"id": "ufs1", "wrapped_keys": true, "lus": [{"name": "ub", "size": "16M"}]},
	    {"id": "ufs2", "lus": [{"name": "uc", "size": "16M"}]}],
	  "steps": [{"op": "sysinfo"}]})"));
    auto a = qemu_argv(s, paths("/q", "/k", "/i", "/a"), EngineOptions{});
    CHECK(has(a, "secret,id=wk-ufs0,format=base64,"
                 "data=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="));
    CHECK(has_substr(a, ",crypto-wrapped-keys=on,crypto-raw-keys=off,crypto-wrapping-key=wk-ufs0"));
    CHECK(has(a, "ufs,id=ufs1,serial=icemu-ufs1,addr=0x05,crypto=on,crypto-log=clog-ufs1,"
                 "crypto-wrapped-keys=on"));
    CHECK(has(a, "ufs,id=ufs2,serial=icemu-ufs2,addr=0x06,crypto=on,crypto-log=clog-ufs2"));
    CHECK_FALSE(has_substr(a, "wk-ufs1"));
    CHECK(hex_to_base64("ff") == "/w==");
    CHECK(hex_to_base64("ffee") == "/+4=");
}
