#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so `npx s3kq` works in the repository without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli.ts');
