/**
 * A reused, growing byte buffer for the row writers: ASCII copied byte by
 * byte, int32 numbers written as decimal digits, anything else as UTF-8.
 * `take` hands out the bytes written since the last `take` in a buffer of
 * their own (never Node's shared pool), so an encoding thread can transfer it.
 */
export class ByteWriter {
  protected buf = Buffer.allocUnsafeSlow(1 << 16);
  protected off = 0;

  take(): Buffer {
    const out = Buffer.allocUnsafeSlow(this.off);
    this.buf.copy(out, 0, 0, this.off);
    this.off = 0;
    return out;
  }

  protected byte(c: number): void {
    if (this.off >= this.buf.length) this.grow(1);
    this.buf[this.off++] = c;
  }

  protected bytes(b: Uint8Array): void {
    if (this.off + b.length > this.buf.length) this.grow(b.length);
    this.buf.set(b, this.off);
    this.off += b.length;
  }

  /** Text of any kind, as UTF-8 (lone surrogates as U+FFFD, as Buffer.from writes them). */
  protected utf8(s: string): void {
    if (this.off + s.length * 3 > this.buf.length) this.grow(s.length * 3);
    this.off += this.buf.write(s, this.off);
  }

  /** An int32 in decimal, as String() writes it (-0 as 0). */
  protected int(v: number): void {
    if (this.off + 12 > this.buf.length) this.grow(12);
    const b = this.buf;
    let o = this.off;
    if (v < 0) { b[o++] = 0x2d; v = -v; }
    let digits = 1;
    for (let x = v; x >= 10; x = (x / 10) | 0) digits++;
    o += digits;
    this.off = o;
    do {
      const q = (v / 10) | 0;
      b[--o] = 0x30 + v - q * 10;
      v = q;
    } while (v > 0);
  }

  protected grow(n: number): void {
    const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.off + n + 1024));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }
}
