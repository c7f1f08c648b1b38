/**
 * keystate/s3: S3Storage, checkpoints in any S3-compatible object store
 * through `@aws-sdk/client-s3` (an optional peer dependency: only this entry
 * point imports it). Environment-neutral: Node, and browsers where the
 * endpoint allows the page's origin (CORS).
 */
export { S3Storage } from './storage/s3.js';
export type { S3StorageOptions, S3LockOptions, S3UploadProgress } from './storage/s3.js';
