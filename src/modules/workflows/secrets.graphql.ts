import { z } from 'zod';
import { builder } from '../../graphql/builder.js';
import type { SecretInfo } from './secrets.js';
import { SECRET_NAME } from './secrets.js';

const name = z.string().regex(SECRET_NAME, 'must be a letter then up to 63 letters, digits or _ (e.g. GITHUB_TOKEN)');

const SecretRef = builder.objectRef<SecretInfo>('Secret').implement({
  description: "A named secret of the account for workflow steps (e.g. action.githubComment's `token`). Its value is stored encrypted and never shown.",
  fields: (t) => ({
    name: t.exposeString('name'),
    updatedAt: t.field({ type: 'DateTime', resolve: (secret) => secret.updatedAt }),
  }),
});

builder.queryFields((t) => ({
  secrets: t.withAuth({ designer: true }).field({
    type: [SecretRef],
    description: "The names of the caller's account's secrets (designers and admins), never their values.",
    resolve: (_root, _args, ctx) => ctx.secrets.list(ctx),
  }),
}));

builder.mutationFields((t) => ({
  setSecret: t.withAuth({ designer: true }).field({
    type: SecretRef,
    description:
      'Store or replace a named secret of the caller\'s account, encrypted with the server\'s master key; steps name it (`"token": "GITHUB_TOKEN"`). The answer holds the name only.',
    errors: { directResult: true },
    args: { name: t.arg.string({ required: true, validate: name }), value: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.secrets.set(ctx, args.name, args.value),
  }),
  deleteSecret: t.withAuth({ designer: true }).field({
    type: SecretRef,
    description: "Delete a named secret of the caller's account (steps naming it fail with SECRET_NOT_FOUND).",
    errors: { directResult: true },
    args: { name: t.arg.string({ required: true, validate: name }) },
    resolve: (_root, args, ctx) => ctx.secrets.delete(ctx, args.name),
  }),
}));
