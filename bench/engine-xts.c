/*
 * engine-xts: AES-256-XTS throughput of the icemu crypto engine's data path, per data unit,
 * side by side with libgcrypt called directly.
 *
 * Built by bench/icemu-bench against the QEMU build the device runs in: QEMU's own crypto
 * objects (libcrypto.a.p/crypto_cipher.c.o with the gcrypt backend, libqemuutil.a for
 * qcrypto_init and error handling) with QEMU's compile flags. The "engine" series calls the
 * engine's own per-data-unit loop, inline_crypto_xts_units() (an inline function of
 * include/hw/block/inline-crypto.h, added by hw/patches/0005-*, used by every transform of
 * hw/block/inline-crypto-req.c and -staging.c): per data unit one qcrypto_cipher_setiv() with the
 * 128-bit little-endian tweak DUN + unit, then one qcrypto_cipher_encrypt()/decrypt() of the
 * unit, here in place over a 1 MiB buffer. What it does not include is the guest-memory side
 * of the data path (the engine maps the PRDT buffers and transforms between them and its
 * staging buffer), which is part of the emulated I/O measured by the guest benchmarks.
 *
 * The "gcrypt" loop does the same per-unit work with libgcrypt directly (gcry_cipher_setiv +
 * gcry_cipher_encrypt): the best the backend can do with one call per unit. "gcrypt-reset"
 * adds the gcry_cipher_reset() that QEMU's qcrypto_gcrypt_setiv() (crypto/cipher-gcrypt.c.inc)
 * calls before every setiv: it explains the engine's gap to libgcrypt at small data units.
 *
 * Usage: engine-xts DU_BYTES [CPU_SECONDS_PER_RUN] [REPS] [FIRST_REP]
 * Prints one JSON object per line: {"impl":"engine"|"gcrypt","du":N,"op":"enc"|"dec",
 *                                   "bytes":B,"seconds":S,"gbps":B/S/1e9}
 * The implementations alternate within each repetition (and swap order every repetition) so
 * load changes hit both alike; times are thread CPU time.
 */
#include "qemu/osdep.h"
#include "crypto/cipher.h"
#include "crypto/init.h"
#include "hw/block/inline-crypto.h"
#include "qapi/error.h"
#include "qemu/bswap.h"

#include <gcrypt.h>
#include <time.h>

#define BUF_BYTES (1024 * 1024) /* one 1 MiB request, as the guest benchmarks issue */

/*
 * CPU time of this thread: the machine is shared, and `openssl speed` (the other reference)
 * also divides by CPU (user) time unless given -elapsed.
 */
static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void tweak(uint8_t iv[16], uint64_t dun, uint64_t unit)
{
    uint64_t lo = dun + unit;

    memset(iv, 0, 16);
    stq_le_p(iv, lo);
    stq_le_p(iv + 8, lo < dun ? 1 : 0);
}

/* The engine's per-data-unit loop over one buffer, in place. */
static void engine_transform(QCryptoCipher *c, uint8_t *buf, size_t len, uint32_t du,
                             uint64_t dun, bool encrypt)
{
    if (inline_crypto_xts_units(c, dun, 0, du, buf, buf, len, encrypt, &error_abort) < 0) {
        abort();
    }
}

static void gcrypt_transform(gcry_cipher_hd_t h, uint8_t *buf, size_t len, uint32_t du,
                             uint64_t dun, bool encrypt, bool reset)
{
    uint8_t iv[16];
    uint64_t unit = 0;

    for (size_t off = 0; off < len; off += du, unit++) {
        tweak(iv, dun, unit);
        if (reset) {
            gcry_cipher_reset(h); /* what qcrypto_gcrypt_setiv() does before every setiv */
        }
        if (gcry_cipher_setiv(h, iv, sizeof(iv))) {
            abort();
        }
        if ((encrypt ? gcry_cipher_encrypt(h, buf + off, du, NULL, 0)
                     : gcry_cipher_decrypt(h, buf + off, du, NULL, 0))) {
            abort();
        }
    }
}

int main(int argc, char **argv)
{
    uint32_t du = argc > 1 ? strtoul(argv[1], NULL, 0) : 4096;
    double secs = argc > 2 ? strtod(argv[2], NULL) : 0.3;
    int reps = argc > 3 ? atoi(argv[3]) : 5;
    int first = argc > 4 ? atoi(argv[4]) : 0; /* repetition number to start with */
    uint8_t key[64];
    uint8_t *buf = g_malloc(BUF_BYTES);
    QCryptoCipher *c;
    gcry_cipher_hd_t h;

    if (du < 16 || du > BUF_BYTES || BUF_BYTES % du) {
        fprintf(stderr, "engine-xts: bad data unit size %u\n", du);
        return 2;
    }
    qcrypto_init(&error_fatal);
    for (int i = 0; i < 64; i++) {
        key[i] = (uint8_t)(i * 7 + 1);
    }
    for (int i = 0; i < BUF_BYTES; i++) {
        buf[i] = (uint8_t)i;
    }
    c = qcrypto_cipher_new(QCRYPTO_CIPHER_ALGO_AES_256, QCRYPTO_CIPHER_MODE_XTS, key,
                           sizeof(key), &error_fatal);
    if (gcry_cipher_open(&h, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_XTS, 0) ||
        gcry_cipher_setkey(h, key, sizeof(key))) {
        fprintf(stderr, "engine-xts: libgcrypt XTS unavailable\n");
        return 1;
    }
    for (int r = first; r < first + reps; r++) {
        for (int k = 0; k < 3; k++) {
            int impl = (k + r) % 3;

            for (int enc = 1; enc >= 0; enc--) {
                uint64_t bytes = 0, dun = 0;
                double t0 = now_s(), t1;

                do {
                    if (impl == 0) {
                        engine_transform(c, buf, BUF_BYTES, du, dun, enc);
                    } else {
                        gcrypt_transform(h, buf, BUF_BYTES, du, dun, enc, impl == 2);
                    }
                    bytes += BUF_BYTES;
                    dun += BUF_BYTES / du;
                    t1 = now_s();
                } while (t1 - t0 < secs);
                printf("{\"impl\":\"%s\",\"du\":%u,\"op\":\"%s\",\"rep\":%d,\"bytes\":%" PRIu64
                       ",\"seconds\":%.6f,\"gbps\":%.4f}\n",
                       impl == 0 ? "engine" : impl == 1 ? "gcrypt" : "gcrypt-reset", du, enc ? "enc" : "dec", r, bytes, t1 - t0,
                       bytes / (t1 - t0) / 1e9);
                fflush(stdout);
            }
        }
    }
    gcry_cipher_close(h);
    qcrypto_cipher_free(c);
    g_free(buf);
    return 0;
}
