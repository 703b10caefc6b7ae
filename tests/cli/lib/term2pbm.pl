#!/usr/bin/env perl
# SPDX-License-Identifier: Apache-2.0
# Render a QR code drawn on a terminal into a PBM image, as a terminal with a
# light or a dark colour theme would show it, so that a QR decoder can check
# what a phone would see.
#
#   term2pbm.pl light|dark < terminal-output > image.pbm
#
# Understands SGR colours (0, 30-37, 39, 40-47, 49, 90-97, 100-107) and the
# cells ' ', U+2580 (upper half), U+2584 (lower half), U+2588 (full block).
# The first run of lines made only of those cells is the code; each line is
# two module rows. The image gets a margin of the theme's background, as the
# terminal around the code would show. On stderr: "quiet T R B L", the
# number of all-light module rows or columns on each side of the code itself.
use strict;
use warnings;
binmode STDIN, ':encoding(UTF-8)';

my $theme = shift // die "usage: term2pbm.pl light|dark\n";
die "theme is light or dark\n" unless $theme =~ /^(light|dark)$/;
my ($def_fg, $def_bg) = $theme eq 'dark' ? (0, 1) : (1, 0);    # 1 = dark pixel
my $scale = 6;
my $margin = 8;

# Black (30/40) and bright black (90/100) are dark; every other colour of
# the 16 counts as light, which is generous to a renderer using them.
sub dark_of { my $c = shift; return ($c == 0 || $c == 8) ? 1 : 0 }

my (@rows, $in_code);
while (my $line = <STDIN>) {
    chomp $line;
    my ($fg, $bg) = ($def_fg, $def_bg);
    my (@top, @bot);
    my $ok = length($line) > 0;
    my $text = $line;
    while (length $text) {
        if ($text =~ s/^\e\[([0-9;]*)m//) {
            for my $p (split /;/, ($1 eq '' ? '0' : $1)) {
                if    ($p == 0)                { ($fg, $bg) = ($def_fg, $def_bg) }
                elsif ($p >= 30 && $p <= 37)   { $fg = dark_of($p - 30) }
                elsif ($p >= 90 && $p <= 97)   { $fg = dark_of($p - 90 + 8) }
                elsif ($p == 39)               { $fg = $def_fg }
                elsif ($p >= 40 && $p <= 47)   { $bg = dark_of($p - 40) }
                elsif ($p >= 100 && $p <= 107) { $bg = dark_of($p - 100 + 8) }
                elsif ($p == 49)               { $bg = $def_bg }
            }
            next;
        }
        my $ch = substr($text, 0, 1, '');
        if    ($ch eq ' ')        { push @top, $bg; push @bot, $bg }
        elsif ($ch eq "\x{2580}") { push @top, $fg; push @bot, $bg }
        elsif ($ch eq "\x{2584}") { push @top, $bg; push @bot, $fg }
        elsif ($ch eq "\x{2588}") { push @top, $fg; push @bot, $fg }
        else                      { $ok = 0; last }
    }
    $ok = 0 unless @top;
    if ($ok) { push @rows, [@top], [@bot]; $in_code = 1 }
    elsif ($in_code) { last }
}
die "term2pbm: no QR code in the input\n" unless @rows;

my $w = 0;
for (@rows) { $w = @$_ if @$_ > $w }
for (@rows) { push @$_, ($def_bg) x ($w - @$_) }    # the terminal beyond a short line
my $h = @rows;

my ($qt, $qb, $ql, $qr) = (0, 0, 0, 0);
$qt++ while $qt < $h && !grep { $_ } @{ $rows[$qt] };
$qb++ while $qb < $h && !grep { $_ } @{ $rows[$h - 1 - $qb] };
my $col_light = sub { my $x = shift; !grep { $_->[$x] } @rows };
$ql++ while $ql < $w && $col_light->($ql);
$qr++ while $qr < $w && $col_light->($w - 1 - $qr);
print STDERR "quiet $qt $qr $qb $ql\n";

my ($W, $H) = (($w + 2 * $margin) * $scale, ($h + 2 * $margin) * $scale);
print "P1\n$W $H\n";
for my $y (-$margin .. $h + $margin - 1) {
    my @px;
    for my $x (-$margin .. $w + $margin - 1) {
        my $d = ($y >= 0 && $y < $h && $x >= 0 && $x < $w) ? $rows[$y][$x] : $def_bg;
        push @px, ($d) x $scale;
    }
    my $line = join(' ', @px) . "\n";
    print $line for 1 .. $scale;
}
