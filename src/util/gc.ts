import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | null | undefined;

/**
 * Buffers that encoding threads transfer to the main thread are freed only
 * when V8 collects their small JS handles, and a main thread that does little
 * else allocates too little to trigger a collection: up to V8's external-memory
 * limit (64 MB) of written-out buffers can sit there. `releaseEvery` collects
 * after every `bytes` received, so that memory is given back as it is written.
 */
export function releaseEvery(bytes: number): (received: number) => void {
  if (collect === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    } catch {
      collect = null;
    }
  }
  let since = 0;
  return (received) => {
    since += received;
    if (since >= bytes && collect) {
      since = 0;
      collect();
    }
  };
}
