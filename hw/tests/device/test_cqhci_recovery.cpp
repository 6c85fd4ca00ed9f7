// eMMC command queuing on the legacy bus and CQHCI error recovery the way Linux runs it
// (mmc_cqe_recovery, cqhci_recovery_start/finish): CMD44-48 refused outside command queue mode
// and accepted in it, CMD46/47 data through PIO, recovery after a crypto error (halt, SDHCI
// CMD/DATA reset, CMD12, CMD48, clear all, CFG.ENABLE 0 -> 1) followed by queued work, CMD48
// discarding started tasks, and a fatal crypto fault that only Software Reset For All clears,
// wiping the keyslots. Expected ciphertext: icemu::models::xts only.
#include <catch2/catch_test_macros.hpp>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "device/test_cqhci_rig.hpp"

using namespace icemu;
using namespace icemu::cqhci_test;
using cqhci::Resp;
namespace reg = cqhci::reg;
namespace bits = cqhci::bits;
namespace mmc = cqhci::mmc;
namespace sdhci = cqhci::sdhci;

namespace {

constexpr std::uint32_t kRcaArg = mmc::kRca << 16;
constexpr std::uint32_t kQueueIrqs = bits::kIsTcc | bits::kIsRed | bits::kIsGce | bits::kIsIcce;

// CMD44 argument: direction (bit 30: 1 = read), task ID 20:16, block count 15:0.
constexpr std::uint32_t queue_params(unsigned tag, bool read, std::uint16_t blocks) {
    return (read ? (1u << 30) : 0u) | (tag << 16) | blocks;
}

std::uint32_t status(cqhci::CqhciHost& h) {
    const auto st = h.command(mmc::kStatus, kRcaArg, Resp::r1);
    REQUIRE(st);
    return *st;
}

// Events of one kind (and optional string field value) in the crypto event log, read through
// the models' parser (a line outside the schema throws).
std::size_t count_events(const std::filesystem::path& log, const std::string& ev,
                         const std::string& field = {}, const std::string& value = {}) {
    namespace events = icemu::models::events;
    std::size_t n = 0;
    for (const auto& e : events::read_log_file(log.string())) {
        if (events::event_name(e.body) != ev) {
            continue;
        }
        if (!field.empty() &&
            nlohmann::json::parse(events::to_json_line(e)).value(field, std::string()) != value) {
            continue;
        }
        ++n;
    }
    return n;
}

bool cqe_irq(cqhci::CqhciHost& h) {
    return (h.rsdhci(sdhci::kNorIntSts) & sdhci::kNisCqe) != 0;
}

} // namespace

TEST_CASE("eMMC: CMD44-48 and CMD12 are illegal outside command queue mode, no harm done",
          "[device][cqhci][cmdq]") {
    EmmcRig r(cq_options(false));
    auto& h = r.host();
    REQUIRE(h.init_card(false));
    CHECK(mmc::status_state(status(h)) == mmc::kStateTran);
    for (unsigned cmd : {44u, 45u, 46u, 47u, 48u}) {
        INFO("CMD" << cmd);
        const std::uint32_t arg = cmd == 48 ? 1u : queue_params(1, false, 1);
        CHECK_FALSE(h.command(cmd, arg, cmd == 48 ? Resp::r1b : Resp::r1));
        // the card answers the next command, flags the illegal one and stays in tran
        const std::uint32_t st = status(h);
        CHECK((st & mmc::kStatusIllegal) != 0);
        CHECK(mmc::status_state(st) == mmc::kStateTran);
        CHECK((status(h) & mmc::kStatusIllegal) == 0);
    }
    CHECK_FALSE(h.command(mmc::kStop, 0, Resp::r1b)); // nothing to stop in tran
    // the SDHCI and the CQHCI still work: a queued write goes to the medium
    h.enable(false);
    const auto data = test::pattern_bytes(1024, 5);
    REQUIRE(h.write(0, 8, data));
    CHECK(r.medium(8 * 512, data.size()) == data);
}

TEST_CASE("eMMC command queue mode: CMD12, CMD48, CMD44/45 with CMD13 SQS",
          "[device][cqhci][cmdq]") {
    EmmcRig r(cq_options(false));
    auto& h = r.host();
    REQUIRE(h.init_card(true));
    const auto stop = h.command(mmc::kStop, 0, Resp::r1b);
    REQUIRE(stop);
    CHECK(mmc::status_state(*stop) == mmc::kStateTran);
    const auto discard = h.command(mmc::kTaskMgmt, 1, Resp::r1b);
    REQUIRE(discard);
    CHECK((*discard & mmc::kStatusIllegal) == 0);
    CHECK(mmc::status_state(*discard) == mmc::kStateTran);
    CHECK_FALSE(h.command(mmc::kTaskMgmt, 3, Resp::r1b)); // no such TM op-code
    CHECK((status(h) & mmc::kStatusIllegal) != 0);

    // queue tasks 3 and 9; the queue status register shows them ready
    REQUIRE(h.command(mmc::kQueueParams, queue_params(3, false, 4), Resp::r1));
    REQUIRE(h.command(mmc::kQueueAddr, 40, Resp::r1));
    REQUIRE(h.command(mmc::kQueueParams, queue_params(9, true, 1), Resp::r1));
    REQUIRE(h.command(mmc::kQueueAddr, 7, Resp::r1));
    auto qsr = h.command(mmc::kStatus, kRcaArg | (1u << 15), Resp::r1);
    REQUIRE(qsr);
    CHECK(*qsr == ((1u << 3) | (1u << 9)));
    // a task ID in use, a zero block count and CMD45 without CMD44 are refused
    CHECK_FALSE(h.command(mmc::kQueueParams, queue_params(3, true, 1), Resp::r1));
    CHECK_FALSE(h.command(mmc::kQueueParams, queue_params(4, true, 0), Resp::r1));
    CHECK_FALSE(h.command(mmc::kQueueAddr, 0, Resp::r1));
    // CMD48 TM op-code 2 discards task 3 alone, op-code 1 the rest
    REQUIRE(h.command(mmc::kTaskMgmt, (3u << 16) | 2u, Resp::r1b));
    qsr = h.command(mmc::kStatus, kRcaArg | (1u << 15), Resp::r1);
    REQUIRE(qsr);
    CHECK(*qsr == (1u << 9));
    CHECK_FALSE(h.command(mmc::kExecWrite, 3u << 16, Resp::r1)); // discarded: not ready
    REQUIRE(h.command(mmc::kTaskMgmt, 1, Resp::r1b));
    qsr = h.command(mmc::kStatus, kRcaArg | (1u << 15), Resp::r1);
    REQUIRE(qsr);
    CHECK(*qsr == 0);
    // without SQS, CMD13 is the card status again
    CHECK(mmc::status_state(status(h)) == mmc::kStateTran);
    // leaving command queue mode empties the queue and makes CMD48 illegal again
    REQUIRE(h.command(mmc::kQueueParams, queue_params(5, false, 1), Resp::r1));
    REQUIRE(h.command(mmc::kQueueAddr, 1, Resp::r1));
    REQUIRE(h.command(mmc::kSwitch, mmc::switch_arg(mmc::kExtCsdCmdqModeEn, 0), Resp::r1b));
    CHECK_FALSE(h.command(mmc::kTaskMgmt, 1, Resp::r1b));
    REQUIRE(h.command(mmc::kSwitch, mmc::switch_arg(mmc::kExtCsdCmdqModeEn, 1), Resp::r1b));
    qsr = h.command(mmc::kStatus, kRcaArg | (1u << 15), Resp::r1);
    REQUIRE(qsr);
    CHECK(*qsr == 0);
}

TEST_CASE("eMMC command queue mode: CMD46/CMD47 execute queued tasks over the bus (PIO)",
          "[device][cqhci][cmdq]") {
    EmmcRig r(cq_options(false));
    auto& h = r.host();
    REQUIRE(h.init_card(true));
    const auto data = test::pattern_bytes(3 * 512, 77);
    REQUIRE(h.command(mmc::kQueueParams, queue_params(5, false, 3), Resp::r1));
    REQUIRE(h.command(mmc::kQueueAddr, 16, Resp::r1));
    REQUIRE(h.pio_write(mmc::kExecWrite, 5u << 16, data));
    CHECK(r.medium(16 * 512, data.size()) == data);
    CHECK(mmc::status_state(status(h)) == mmc::kStateTran);

    REQUIRE(h.command(mmc::kQueueParams, queue_params(6, true, 3), Resp::r1));
    REQUIRE(h.command(mmc::kQueueAddr, 16, Resp::r1));
    const auto back = h.pio_read(mmc::kExecRead, 6u << 16, 3);
    REQUIRE(back);
    CHECK(*back == data);
    CHECK(mmc::status_state(status(h)) == mmc::kStateTran);

    // executing in the other direction than queued is refused; the task stays queued
    REQUIRE(h.command(mmc::kQueueParams, queue_params(7, false, 1), Resp::r1));
    REQUIRE(h.command(mmc::kQueueAddr, 2, Resp::r1));
    CHECK_FALSE(h.pio_read(mmc::kExecRead, 7u << 16, 1));
    const auto qsr = h.command(mmc::kStatus, kRcaArg | (1u << 15), Resp::r1);
    REQUIRE(qsr);
    CHECK(*qsr == (1u << 7));
    // beyond the end of the user area: ADDRESS_ERROR, and the task is not queued
    REQUIRE(h.command(mmc::kQueueParams, queue_params(8, false, 8), Resp::r1));
    const auto addr = h.command(mmc::kQueueAddr, kMediumBytes / 512 - 4, Resp::r1);
    REQUIRE(addr);
    CHECK((*addr & (1u << 30)) != 0);
    CHECK_FALSE(h.pio_write(mmc::kExecWrite, 8u << 16, test::pattern_bytes(8 * 512, 1)));
}

TEST_CASE("cqhci recovery after a crypto error: GCE and NORINTSTS bit 14, then halt, CMD12, "
          "CMD48, clear, re-enable and the queued work completes with the same keys",
          "[device][cqhci][crypto][errors][recovery]") {
    EmmcRig r(cq_options(true, "crypto-keyslots=8", true));
    auto& h = r.host();
    REQUIRE(h.init_card(true));
    h.enable(true);
    const auto key = cryptokey(31);
    h.program_keyslot(2, key, 512);
    r.machine().qom_set("/machine/peripheral/sd0", "crypto-fault-count", 1);

    const auto d0 = test::pattern_bytes(8 * 512, 40);
    const auto d1 = test::pattern_bytes(8 * 512, 41);
    const auto d2 = test::pattern_bytes(8 * 512, 42);
    h.put_data(0, d0);
    h.put_data(1, d1);
    h.put_data(2, d2);
    h.prepare(task(0, true, 0, 8, Crypto{true, 2, 100}));
    h.prepare(task(1, true, 64, 8));
    h.prepare(task(2, true, 128, 8, Crypto{true, 2, 7}));
    h.ring(0x7);
    // tag 0 takes the fault (the first CE task fetched); 1 and 2 complete
    REQUIRE(h.wait_tcn(0x6, 0) == 0x6u);
    CHECK((h.rreg(reg::kIs) & bits::kIsGce) != 0);
    CHECK(cqe_irq(h));
    const std::uint32_t terri = h.rreg(reg::kTerri);
    CHECK((terri & bits::kTerriDValid) != 0);
    CHECK(((terri >> 24) & 0x1f) == 0u);
    CHECK(h.rreg(reg::kTdbr) == 0x1u); // the failed task is still owned by the CQE
    h.ack(0x6);
    CHECK(r.medium(0, d0.size()) == std::vector<std::uint8_t>(d0.size(), 0));

    const auto rec = h.recover();
    CHECK(rec.halted);
    REQUIRE(rec.cmd12);
    REQUIRE(rec.cmd48);
    CHECK((*rec.cmd48 & mmc::kStatusIllegal) == 0);
    CHECK(mmc::status_state(*rec.cmd48) == mmc::kStateTran);
    CHECK(rec.cleared);
    CHECK(h.rreg(reg::kTdbr) == 0);
    CHECK(h.rreg(reg::kTerri) == 0);
    CHECK(h.rreg(reg::kIs) == 0);
    CHECK(h.rreg(reg::kCtl) == 0);
    CHECK_FALSE(cqe_irq(h));

    // the block layer retries the failed request next to new work: a CE read of tag 2's data
    h.prepare(task(0, true, 0, 8, Crypto{true, 2, 100}));
    r.machine().memset(h.data_addr(3), d2.size(), 0);
    h.prepare(task(3, false, 128, 8, Crypto{true, 2, 7}));
    h.ring(0x9);
    REQUIRE(h.wait_tcn(0x9) == 0x9u);
    h.ack(0x9);
    CHECK(r.medium(0, d0.size()) == model_encrypt(key, 100, 512, d0));
    CHECK(r.medium(64 * 512, d1.size()) == d1);
    CHECK(r.medium(128 * 512, d2.size()) == model_encrypt(key, 7, 512, d2));
    CHECK(h.get_data(3, d2.size()) == d2);
    CHECK(h.rreg(reg::kIs) == 0);

    // recovery is not a reset: no keyslot was wiped, the one fault fired
    CHECK(count_events(r.log_path(), "wipe") == 0);
    CHECK(count_events(r.log_path(), "fault") == 1);
}

TEST_CASE("cqhci: CMD48 discards the tasks started on the card; they stay owned by the CQE until "
          "cleared, tasks not yet sent survive",
          "[device][cqhci][recovery]") {
    EmmcOptions o = cq_options(false);
    // qtest runs block throttling on the virtual clock: a throttled write waits for clock_step
    o.drive_opts = "throttling.iops-total=1";
    EmmcRig r(o);
    auto& h = r.host();
    REQUIRE(h.init_card(true));
    h.enable(false);
    const auto data = test::pattern_bytes(512, 9);
    // the first request empties the bucket; the next one waits in the throttle queue
    REQUIRE(h.write(0, 0, data));
    h.put_data(1, data);
    h.prepare(task(1, true, 8, 1));
    h.ring(1u << 1);
    for (int i = 0; i < 10; ++i) {
        CHECK(h.rreg(reg::kTcn) == 0);
    }
    // Linux's recovery order: halt first; then a task rung while halted is not on the card
    h.wreg(reg::kIste, bits::kIsHac);
    h.wreg(reg::kCtl, bits::kCtlHalt);
    h.put_data(2, data);
    h.prepare(task(2, true, 16, 1));
    h.ring(1u << 2);
    REQUIRE(h.command(mmc::kTaskMgmt, 1, Resp::r1b));
    r.machine().clock_step(5'000'000'000ull);
    for (int i = 0; i < 20; ++i) {
        CHECK((h.rreg(reg::kTcn) & 0x2u) == 0); // discarded: never completes
    }
    CHECK(h.rreg(reg::kTdbr) == 0x6u);
    // clear task 1 alone; task 2 runs after the unhalt
    h.wreg(reg::kTclr, 1u << 1);
    CHECK(h.rreg(reg::kTdbr) == 0x4u);
    h.wreg(reg::kIs, 0x3f);
    h.wreg(reg::kIste, kQueueIrqs);
    h.wreg(reg::kCtl, 0);
    for (int i = 0; i < 50 && (h.rreg(reg::kTcn) & 0x4u) == 0; ++i) {
        r.machine().clock_step(1'000'000'000ull);
    }
    CHECK(h.wait_tcn(1u << 2) == (1u << 2));
    CHECK(r.medium(16 * 512, 512) == data);
    CHECK(h.rreg(reg::kTdbr) == 0);
}

TEST_CASE("cqhci: a fatal crypto fault takes the host down until Software Reset For All, which "
          "resets the CQHCI and wipes the keyslots; reprogrammed keys work again",
          "[device][cqhci][crypto][errors][recovery]") {
    EmmcRig r(cq_options(true, "crypto-keyslots=4", true));
    auto& h = r.host();
    REQUIRE(h.init_card(true));
    h.enable(true);
    const auto key = cryptokey(33);
    h.program_keyslot(1, key, 512);
    const auto data = test::pattern_bytes(4096, 50);
    REQUIRE(h.write(0, 0, data, Crypto{true, 1, 3}));
    r.machine().qom_set("/machine/peripheral/sd0", "crypto-fault-fatal", true);
    r.machine().qom_set("/machine/peripheral/sd0", "crypto-fault-count", 1);

    h.put_data(2, data);
    h.prepare(task(2, true, 64, 8, Crypto{true, 1, 4}));
    h.ring(1u << 2);
    CHECK(h.wait_tcn(1u << 2) == 0u);
    CHECK((h.rreg(reg::kIs) & bits::kIsGce) != 0);
    CHECK((h.rreg(reg::kTerri) & bits::kTerriDValid) != 0);
    // the host is down: no command reaches the card, no task is fetched
    CHECK_FALSE(h.command(mmc::kStatus, kRcaArg, Resp::r1));
    h.put_data(3, data);
    h.prepare(task(3, true, 128, 8));
    h.ring(1u << 3);
    for (int i = 0; i < 20; ++i) {
        CHECK((h.rreg(reg::kTcn) & (1u << 3)) == 0);
    }
    CHECK(h.rreg(reg::kTdbr) == ((1u << 2) | (1u << 3)));
    // Linux's recovery: CMD12 and CMD48 time out (so it resets the card next)
    const auto rec = h.recover();
    CHECK(rec.halted);
    CHECK_FALSE(rec.cmd12);
    CHECK_FALSE(rec.cmd48);
    CHECK(rec.cleared);
    CHECK(count_events(r.log_path(), "wipe") == 0);

    // mmc_blk_reset -> power cycle -> sdhci_and_cqhci_reset: CQHCI off, then reset-all
    h.wreg(reg::kCfg, h.rreg(reg::kCfg) & ~bits::kCfgEnable);
    h.sdhci_reset(sdhci::kResetAll);
    CHECK(h.rreg(reg::kCfg) == 0);
    CHECK(h.rreg(reg::kCtl) == 0);
    CHECK(h.rreg(reg::kTdbr) == 0);
    CHECK(h.rreg(reg::kIs) == 0);
    CHECK(count_events(r.log_path(), "wipe", "reason", "reset") == 1);
    CHECK(count_events(r.log_path(), "fault", "kind", "fatal") == 1);
    // the card answers again; Linux re-initializes it (CMDQ mode again)
    REQUIRE(h.init_card(true));
    r.machine().qom_set("/machine/peripheral/sd0", "crypto-fault-fatal", false);
    h.enable(true);
    // the slot was wiped: a CE task on it is refused with ICCE
    h.put_data(4, data);
    h.prepare(task(4, true, 64, 8, Crypto{true, 1, 4}));
    h.ring(1u << 4);
    CHECK(h.wait_tcn(1u << 4) == 0u);
    CHECK((h.rreg(reg::kIs) & bits::kIsIcce) != 0);
    CHECK(h.rreg(reg::kTdpe) == (1u << 4));
    const auto rec2 = h.recover();
    CHECK(rec2.cmd48);
    CHECK(h.rreg(reg::kTdbr) == 0);
    // mmc_set_initial_state reprograms the keys
    h.program_keyslot(1, key, 512);
    REQUIRE(h.write(4, 64, data, Crypto{true, 1, 4}));
    CHECK(r.medium(64 * 512, data.size()) == model_encrypt(key, 4, 512, data));
    // what was written before the fault still decrypts
    const auto back = h.read(5, 0, 8, Crypto{true, 1, 3});
    REQUIRE(back);
    CHECK(*back == data);
}

TEST_CASE("cqhci keyslots survive CFG.ENABLE 0 -> 1 and SDHCI CMD / DATA resets, not reset-all",
          "[device][cqhci][crypto]") {
    EmmcRig r(cq_options(true, "crypto-keyslots=4"));
    auto& h = r.host();
    h.enable(true);
    const auto key = cryptokey(34);
    h.program_keyslot(3, key, 4096);
    const auto data = test::pattern_bytes(8192, 51);
    h.wreg(reg::kCfg, h.rreg(reg::kCfg) & ~bits::kCfgEnable);
    h.sdhci_reset(sdhci::kResetCmd);
    h.sdhci_reset(sdhci::kResetData);
    h.enable(true);
    REQUIRE(h.write(1, 32, data, Crypto{true, 3, 0xfffffffeu}));
    CHECK(r.medium(32 * 512, data.size()) == model_encrypt(key, 0xfffffffeu, 4096, data));
    h.sdhci_reset(sdhci::kResetAll);
    h.enable(true);
    h.put_data(1, data);
    h.prepare(task(1, true, 32, 16, Crypto{true, 3, 0}));
    h.ring(1u << 1);
    CHECK(h.wait_tcn(1u << 1) == 0u);
    CHECK((h.rreg(reg::kIs) & bits::kIsIcce) != 0);
    const auto state = r.machine().qom_get("/machine/peripheral/sd0", "crypto-state");
    INFO(state.dump());
    REQUIRE(state.contains("slots"));
    for (const auto& slot : state["slots"]) {
        CHECK_FALSE(slot.value("armed", true));
    }
    CHECK(state["counters"].value("wipes", 0) == 1);
}
