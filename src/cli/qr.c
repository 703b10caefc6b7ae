/* SPDX-License-Identifier: Apache-2.0 */
/* QR codes: on the terminal and as PNG files. libqrencode makes the matrix.
 *
 * On a terminal each text line carries two module rows (the upper half block
 * U+2580 takes the top module's colour as foreground, the bottom one's as
 * background), so the code stays square and a pairing URI fits in 80x24.
 * Every cell sets both colours explicitly (black, bright white): a code
 * drawn in the terminal's own colours comes out inverted on one of light or
 * dark themes, and inverted codes do not scan on most phones. The quiet
 * zone is the 4 modules ISO/IEC 18004 asks for. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUIET 4          /* modules of light margin on each side */
#define PNG_SCALE 8      /* pixels per module in --qr-png files */
#define QR_TEXT_MAX 2048 /* far above a pairing URI; QR version 40 holds 2953 bytes at level L */

static pl_err encode(const char *text, QRcode **out) {
    *out = NULL;
    if (strlen(text) > QR_TEXT_MAX) return PL_ERR_TOO_LARGE;
    QRcode *qr = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_L);
    if (!qr) return errno == ERANGE ? PL_ERR_TOO_LARGE : PL_ERR_NOMEM;
    *out = qr;
    return PL_OK;
}

/* Dark module at (x, y) of the code with its quiet zone; outside is light. */
static int dark(const QRcode *qr, int x, int y) {
    x -= QUIET, y -= QUIET;
    return x >= 0 && y >= 0 && x < qr->width && y < qr->width && (qr->data[y * qr->width + x] & 1);
}

pl_err pl_cli_print_qr(FILE *f, const char *text) {
    QRcode *qr;
    pl_err e = encode(text, &qr);
    if (e != PL_OK) return e;
    const int n = qr->width + 2 * QUIET;
    /* SGR colours: foreground 30 black / 97 bright white, background 40 / 107. */
    for (int y = 0; y < n; y += 2) {
        int fg = -1, bg = -1;
        for (int x = 0; x < n; x++) {
            int top = dark(qr, x, y), bot = dark(qr, x, y + 1); /* a row past the end is light */
            int want_bg = bot ? 40 : 107;
            if (top == bot) {
                if (bg != want_bg) fprintf(f, "\033[%dm", want_bg), bg = want_bg;
                fputc(' ', f);
            } else {
                int want_fg = top ? 30 : 97;
                if (fg != want_fg || bg != want_bg) fprintf(f, "\033[%d;%dm", want_fg, want_bg);
                fg = want_fg, bg = want_bg;
                fputs("\u2580", f);
            }
        }
        fputs("\033[0m\n", f); /* reset before the newline: no colour bleeds past the code */
    }
    QRcode_free(qr);
    return ferror(f) ? PL_ERR_IO : PL_OK;
}

pl_err pl_cli_write_qr_png(FILE *f, const char *text) {
    QRcode *qr;
    pl_err e = encode(text, &qr);
    if (e != PL_OK) return e;
    const int n = (qr->width + 2 * QUIET) * PNG_SCALE;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    /* 1 bit per pixel, 0 = black */
    png_bytep row = malloc((size_t)(n + 7) / 8);
    if (!png || !info || !row) {
        png_destroy_write_struct(&png, &info);
        free(row);
        QRcode_free(qr);
        return PL_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) { /* libpng reports write errors this way */
        png_destroy_write_struct(&png, &info);
        free(row);
        QRcode_free(qr);
        return PL_ERR_IO;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)n, (png_uint_32)n, 1, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int py = 0; py < n; py++) {
        memset(row, 0xff, (size_t)(n + 7) / 8);
        for (int px = 0; px < n; px++)
            if (dark(qr, px / PNG_SCALE, py / PNG_SCALE))
                row[px / 8] &= (png_byte) ~(0x80u >> (px % 8));
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    QRcode_free(qr);
    return fflush(f) == 0 && !ferror(f) ? PL_OK : PL_ERR_IO;
}

int pl_cli_qr_open(pl_cli_qr *q, const char *cmd) {
    if (!q->png_path) return 0;
    /* 0600: a pairing URI carries the pairing's symKey, a code the pairing secret. */
    int fd = open(q->png_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    q->png_created = fd >= 0;
    if (fd < 0 && errno == EEXIST) fd = open(q->png_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0 || !(q->png = fdopen(fd, "wb"))) {
        fprintf(stderr, "pairlink %s: cannot write the QR code to '%s': %s\n", cmd, q->png_path,
                strerror(errno));
        if (fd >= 0) close(fd);
        return 1;
    }
    return 0;
}

int pl_cli_qr_show(pl_cli_qr *q, const char *cmd, const char *text, bool json) {
    /* Never inside --json output: it would break one object per line. */
    bool term =
        !json && (q->mode == PL_CLI_QR_ON || (q->mode == PL_CLI_QR_AUTO && isatty(STDOUT_FILENO)));
    if (term) pl_cli_print_qr(stdout, text);
    if (!q->png) return 0;
    pl_err e = pl_cli_write_qr_png(q->png, text);
    int saved = errno;
    if (fclose(q->png) != 0 && e == PL_OK) e = PL_ERR_IO, saved = errno;
    q->png = NULL;
    if (e != PL_OK) {
        fprintf(stderr, "pairlink %s: cannot write the QR code to '%s': %s\n", cmd, q->png_path,
                e == PL_ERR_IO ? strerror(saved) : pl_strerror(e));
        if (q->png_created) unlink(q->png_path);
        return 1;
    }
    return 0;
}

void pl_cli_qr_close(pl_cli_qr *q) {
    if (!q->png) return;
    /* Nothing was shown (the command failed first): leave no empty file. */
    fclose(q->png);
    q->png = NULL;
    if (q->png_created) unlink(q->png_path);
}
