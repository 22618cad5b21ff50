import { z } from 'zod';
import { secretString } from '../../util/secret-string.js';

export const s3ConfigSchema = z.strictObject({
  bucket: z.string().min(1),
  region: z.string().optional(),
  prefix: z.string().optional(),
  endpoint: z.string().optional(),
  force_path_style: z.boolean().optional(),
  /**
   * `when_supported` (the AWS SDK's default): a CRC32 with every upload and checked downloads.
   * `when_required`: only where S3 demands one, for S3-compatible stores that reject the SDK's
   * trailing checksums (`aws-chunked` bodies).
   */
  checksums: z.enum(['when_supported', 'when_required']).optional(),
  sse: z.enum(['AES256', 'aws:kms', 'aws:kms:dsse']).optional(),
  sse_kms_key_id: z.string().optional(),
  part_size_bytes: z.number().int().min(5 * 1024 * 1024).optional(),
  request_timeout_secs: z.number().positive().optional(),
  credentials: z.strictObject({
    access_key_id: secretString,
    secret_access_key: secretString,
    session_token: secretString.optional(),
  }).optional(),
});
export type S3Config = z.infer<typeof s3ConfigSchema>;
