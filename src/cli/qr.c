/* QR codes in the terminal: libqrencode produces the modules; we print two
 * module rows per text line with Unicode half blocks so the code stays
 * square and small enough for an 80x24 terminal to show a pairing URI. */
#include "cli/cli.h"

#include <qrencode.h>
#include <stdio.h>

pl_err pl_cli_print_qr(const char *text) {
    QRcode *qr = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_L);
    if (!qr) return PL_ERR_NOMEM;
    const int quiet = 2, w = qr->width;
    /* Dark modules are drawn as the terminal's background so that the code
     * reads correctly on dark terminals: print light as blocks. */
    for (int y = -quiet; y < w + quiet; y += 2) {
        for (int x = -quiet; x < w + quiet; x++) {
            int top = y >= 0 && y < w && x >= 0 && x < w && (qr->data[y * w + x] & 1);
            int bot = y + 1 >= 0 && y + 1 < w && x >= 0 && x < w && (qr->data[(y + 1) * w + x] & 1);
            const char *c = top ? (bot ? " " : "\u2584") : (bot ? "\u2580" : "\u2588");
            fputs(c, stdout);
        }
        fputc('\n', stdout);
    }
    QRcode_free(qr);
    return PL_OK;
}
