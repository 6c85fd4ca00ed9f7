/*
 * QEMU UFS inline crypto front end
 *
 * Maps UFSHCI's crypto registers (CAP.CS, HCE.CGE, CCAP, x-CRYPTOCAP,
 * x-CRYPTOCFG) and the UTRD crypto fields (CE, CCI, DUNL/DUNU; identical in
 * legacy UTRDs and MCQ SQ entries) onto the inline crypto engine.
 *
 * Data path: an admitted CE READ/WRITE is lent a whole-request buffer in
 * the engine's staging memory (device-private RAM in its own address
 * space) and scsi-disk gets that as the request's scatter/gather list, so
 * it moves the request in one zero-copy I/O like a CE=0 one.  A WRITE is
 * encrypted from the PRDT into the staging buffer before it is issued; a
 * READ is decrypted from the staging buffer into the PRDT when scsi-disk
 * completes it, before the response is sent.  The staging buffer only ever
 * holds ciphertext, and a WRITE only reads the guest's buffer.
 *
 * When staging memory is off or has no room, the request gets no
 * scatter/gather list instead: scsi-disk moves it through its own bounce
 * buffer in chunks of at most 128 KiB and calls transfer_data for each,
 * where the chunk is transformed between the PRDT and that buffer.
 * Requests without CE keep the PRDT as their list.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "scsi/constants.h"
#include "system/dma.h"
#include "hw/scsi/scsi.h"
#include "trace.h"
#include "ufs-crypto.h"

/* UTRD header crypto fields (UFSHCI 4.0, 6.1.1) */
REG32(UTRD_DW0, 0x0)
    FIELD(UTRD_DW0, CCI, 0, 8)
    FIELD(UTRD_DW0, CE, 23, 1)

static bool ufs_has_crypto(UfsHc *u)
{
    return inline_crypto_realized(&u->crypto);
}

void ufs_crypto_instance_init(UfsHc *u)
{
    inline_crypto_add_properties(&u->crypto, OBJECT(u));
    inline_crypto_add_staging_property(&u->crypto, OBJECT(u));
}

bool ufs_crypto_realize(UfsHc *u, Error **errp)
{
    return inline_crypto_realize(&u->crypto, DEVICE(u), ICE_FRONTEND_UFS,
                                 ufs_crypto_cfgptr(u),
                                 ARRAY_SIZE(u->reg.rsvd9), errp);
}

void ufs_crypto_init_hc(UfsHc *u)
{
    InlineCrypto *ic = &u->crypto;
    uint64_t cfg_end;

    if (!ufs_has_crypto(u)) {
        return;
    }
    u->reg.cap = FIELD_DP32(u->reg.cap, CAP, CS, 1);
    u->reg.ccap = inline_crypto_ccap(ic);
    /* x-CRYPTOCAP[i] lives at 0x104 + 4 * i, i.e. in rsvd9 */
    QEMU_BUILD_BUG_ON(offsetof(UfsReg, rsvd9) != 0x104);
    for (unsigned i = 0; i < ARRAY_SIZE(u->reg.rsvd9); i++) {
        u->reg.rsvd9[i] = inline_crypto_cap_reg(ic, i);
    }
    cfg_end = ufs_crypto_cfgptr(u) * 0x100 + inline_crypto_cfg_size(ic);
    u->reg_size = pow2ceil(MAX(u->reg_size, cfg_end));
}

void ufs_crypto_exit(UfsHc *u)
{
    if (u->crypto_cfg.container) {
        memory_region_del_subregion(&u->iomem, &u->crypto_cfg);
    }
    inline_crypto_unrealize(&u->crypto);
}

void ufs_crypto_reset(UfsHc *u)
{
    inline_crypto_reset(&u->crypto);
}

void ufs_crypto_write_hce(UfsHc *u, uint32_t data)
{
    if (!ufs_has_crypto(u)) {
        return;
    }
    u->reg.hce = FIELD_DP32(u->reg.hce, HCE, CGE,
                            FIELD_EX32(data, HCE, CGE));
    inline_crypto_set_enable(&u->crypto, FIELD_EX32(u->reg.hce, HCE, HCE),
                             FIELD_EX32(u->reg.hce, HCE, CGE));
}

/*
 * The x-CRYPTOCFG array is the engine's 32-bit-only region inside BAR0
 * (traced by the engine, key dwords without their value), not part of
 * ufs_mmio_ops, so ufs_mmio_write() never traces a key.
 */
void ufs_crypto_init_pci(UfsHc *u)
{
    if (!ufs_has_crypto(u)) {
        return;
    }
    inline_crypto_init_cfg_region(&u->crypto, &u->crypto_cfg, OBJECT(u),
                                  "ufs-crypto-cfg");
    memory_region_add_subregion(&u->iomem, ufs_crypto_cfgptr(u) * 0x100,
                                &u->crypto_cfg);
}

void ufs_crypto_clear_req(UfsRequest *req)
{
    inline_crypto_release(&req->hc->crypto, &req->crypto);
}

/* The commands whose data the engine encrypts / decrypts */
static bool ufs_crypto_is_rw(uint8_t opcode)
{
    switch (opcode) {
    case READ_6:
    case READ_10:
    case READ_12:
    case READ_16:
    case WRITE_6:
    case WRITE_10:
    case WRITE_12:
    case WRITE_16:
    case WRITE_VERIFY_10:
    case WRITE_VERIFY_12:
    case WRITE_VERIFY_16:
        return true;
    default:
        return false;
    }
}

/* The OCS of a request the engine refused or failed (UFSHCI 4.0 6.1.1) */
static uint8_t ufs_crypto_ocs(InlineCryptoError err)
{
    switch (err) {
    case ICE_OK:
        return UFS_OCS_SUCCESS;
    case ICE_ERR_NO_PRDT:
        return UFS_OCS_MISMATCH_DATA_BUF_SIZE;
    case ICE_ERR_INJECTED:
    case ICE_ERR_DMA:
    case ICE_ERR_CIPHER:
        return UFS_OCS_GENERAL_CRYPTO_ERROR;
    default:
        return UFS_OCS_INVALID_CRYPTO_CONFIG;
    }
}

/*
 * Admission of a SCSI command, before it is issued.  Returns the OCS to
 * complete the request with, or UFS_OCS_SUCCESS to go on.
 */
uint8_t ufs_crypto_prepare(UfsRequest *req, SCSIRequest *scsi_req)
{
    UfsHc *u = req->hc;
    InlineCrypto *ic = &u->crypto;
    InlineCryptoReq *r = &req->crypto;
    uint32_t dw0 = le32_to_cpu(req->utrd.header.dword_0);
    uint32_t bs = scsi_req->dev->blocksize ? scsi_req->dev->blocksize : 1;
    char queue[16];
    InlineCryptoDesc d = {
        .ce = FIELD_EX32(dw0, UTRD_DW0, CE),
        .cci = FIELD_EX32(dw0, UTRD_DW0, CCI),
        .dun = ((uint64_t)le32_to_cpu(req->utrd.header.dword_3) << 32) |
               le32_to_cpu(req->utrd.header.dword_1),
        .rw = ufs_crypto_is_rw(scsi_req->cmd.buf[0]),
        .write = scsi_req->cmd.mode == SCSI_XFER_TO_DEV,
        .has_buf = req->sg != NULL,
        .buf_len = req->data_len,
        .start = scsi_req->cmd.lba * scsi_req->dev->blocksize,
        .len = scsi_req->cmd.xfer,
        .lun = req->req_upiu.header.lun,
        .opcode = scsi_req->cmd.buf[0],
        .lba = scsi_req->cmd.lba,
        .blocks = scsi_req->cmd.xfer / bs,
        .block_size = bs,
        .queue = queue,
    };
    InlineCryptoError err;
    uint8_t ocs;

    if (ufs_mcq_req(req)) {
        snprintf(queue, sizeof(queue), "mcq:%u", req->sq->sqid);
    } else {
        snprintf(queue, sizeof(queue), "sdb");
    }
    err = inline_crypto_admit(ic, r, &d);
    if (err == ICE_OK) {
        /* no staging buffer: the chunked path (transfer_data) */
        if (!inline_crypto_req_active(r) ||
            !inline_crypto_stage(ic, r, DEVICE(u))) {
            return UFS_OCS_SUCCESS;
        }
        if (!d.write) {
            return UFS_OCS_SUCCESS;     /* decrypted on completion */
        }
        /* The whole WRITE is encrypted before anything is issued */
        err = inline_crypto_staged_transform(ic, r, req->sg, d.len);
        if (err == ICE_OK) {
            return UFS_OCS_SUCCESS;
        }
    }

    ocs = ufs_crypto_ocs(err);
    if (inline_crypto_req_fatal(r)) {
        u->reg.is = FIELD_DP32(u->reg.is, IS, CEFES, 1);
    }
    trace_ufs_err_crypto_refused(req->slot, inline_crypto_req_slot(r),
                                 d.opcode, ocs, inline_crypto_error_str(err));
    inline_crypto_finish(ic, r, 0, ocs, -1);
    return ocs;
}

QEMUSGList *ufs_crypto_sg_list(UfsRequest *req)
{
    QEMUSGList *staged = inline_crypto_staged_sg(&req->crypto);

    if (staged) {
        return staged;
    }
    /* no list: scsi-disk's bounce buffer and transfer_data */
    return inline_crypto_req_active(&req->crypto) ? NULL : req->sg;
}

void ufs_crypto_transfer_data(UfsRequest *req, SCSIRequest *scsi_req,
                              uint32_t len)
{
    InlineCryptoReq *r = &req->crypto;
    InlineCryptoError err;

    /*
     * WRITE: plaintext from the PRDT, ciphertext into the bounce buffer
     * (the guest buffer stays); READ: ciphertext from the bounce buffer,
     * plaintext into the PRDT.
     */
    err = inline_crypto_transform_sg(&req->hc->crypto, r, req->sg,
                                     scsi_req_get_buf(scsi_req), len);
    if (err != ICE_OK) {
        /*
         * Never let this chunk reach the medium: cancel the SCSI request
         * before scsi-disk writes its buffer; ufs_crypto_cancel() then
         * completes the UFS request.  Earlier chunks of the same command
         * were written encrypted.
         */
        trace_ufs_err_crypto_transfer(req->slot, inline_crypto_req_slot(r),
                                      inline_crypto_req_done(r), len,
                                      inline_crypto_error_str(err));
        scsi_req_cancel(scsi_req);
        return;
    }
    scsi_req_continue(scsi_req);
}

bool ufs_crypto_cancel(UfsRequest *req, SCSIRequest *scsi_req)
{
    InlineCryptoReq *r = &req->crypto;

    if (!inline_crypto_req_failing(r)) {
        return false;
    }
    inline_crypto_finish(&req->hc->crypto, r, inline_crypto_req_done(r),
                         UFS_OCS_GENERAL_CRYPTO_ERROR, -1);
    ufs_build_upiu_header(req, UFS_UPIU_TRANSACTION_RESPONSE, 0,
                          UFS_COMMAND_RESULT_FAIL, 0, 0);
    ufs_complete_req_ocs(req, UFS_OCS_GENERAL_CRYPTO_ERROR);
    return true;
}

uint8_t ufs_crypto_complete(UfsRequest *req, SCSIRequest *scsi_req,
                            uint32_t transferred)
{
    InlineCrypto *ic = &req->hc->crypto;
    InlineCryptoReq *r = &req->crypto;
    InlineCryptoError err;
    uint8_t ocs = UFS_OCS_SUCCESS;

    if (!ufs_has_crypto(req->hc)) {
        return UFS_OCS_SUCCESS;
    }
    /*
     * A staged READ that succeeded: decrypt into the PRDT before the
     * response goes out.  A failed one leaves the guest buffer alone.
     */
    if (inline_crypto_staged_sg(r) &&
        scsi_req->cmd.mode == SCSI_XFER_FROM_DEV &&
        scsi_req->status == GOOD && transferred) {
        err = inline_crypto_staged_transform(ic, r, req->sg, transferred);
        if (err != ICE_OK) {
            trace_ufs_err_crypto_transfer(req->slot,
                                          inline_crypto_req_slot(r), 0,
                                          transferred,
                                          inline_crypto_error_str(err));
            ocs = ufs_crypto_ocs(err);
            ufs_build_upiu_header(req, UFS_UPIU_TRANSACTION_RESPONSE, 0,
                                  UFS_COMMAND_RESULT_FAIL, 0, 0);
        }
    }
    inline_crypto_finish(ic, r, transferred, ocs, scsi_req->status);
    return ocs;
}
