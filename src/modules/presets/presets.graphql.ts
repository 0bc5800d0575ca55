import { builder } from '../../graphql/builder.js';
import type { PresetVersion } from './presets.api.js';
import type { PresetEntry } from './presetResolution.js';

const PresetVersionRef = builder.objectRef<PresetVersion>('PresetVersion').implement({
  description: 'One version of a preset: what requests used while it was the latest.',
  fields: (t) => ({
    id: t.exposeID('id'),
    version: t.exposeInt('version'),
    config: t.field({ type: 'JSON', description: 'The chat request fields it holds (model, models, provider, temperature …).', resolve: (v) => v.config }),
    systemPrompt: t.exposeString('systemPrompt', { nullable: true }),
    createdAt: t.field({ type: 'DateTime', resolve: (v) => v.createdAt }),
  }),
});

const PresetRef = builder.objectRef<PresetEntry>('Preset').implement({
  description:
    'A named request configuration of the account, used as model "@preset/slug", preset "slug" or model "vendor/model@preset/slug". Requests use its latest version; their own fields are shallow-merged over it (the request wins) and its system prompt is sent first.',
  fields: (t) => ({
    id: t.exposeID('presetId'),
    slug: t.exposeString('slug'),
    name: t.exposeString('name'),
    version: t.exposeInt('version', { description: 'The latest version, the one requests use.' }),
    config: t.field({ type: 'JSON', description: "The latest version's chat request fields.", resolve: (p) => p.config }),
    systemPrompt: t.exposeString('systemPrompt', { nullable: true }),
    versions: t.field({ type: [PresetVersionRef], description: 'Every version, oldest first.', resolve: (p, _args, ctx) => ctx.presets.versions(p) }),
    createdAt: t.field({ type: 'DateTime', resolve: (p) => p.createdAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (p) => p.updatedAt }),
  }),
});

const DeletedPresetRef = builder.objectRef<{ slug: string }>('DeletedPreset').implement({ fields: (t) => ({ slug: t.exposeString('slug') }) });

const CONFIG_DESCRIPTION =
  'Chat request fields, checked as a request is: model, models (fallbacks), provider, max_tokens, temperature, top_p, top_k, min_p, frequency_penalty, presence_penalty, repetition_penalty, seed, stop, logit_bias, logprobs, top_logprobs, tools, tool_choice, parallel_tool_calls, response_format, reasoning, reasoning_effort. At most 32 KiB as JSON.';

builder.queryFields((t) => ({
  presets: t.withAuth({ authenticated: true }).field({
    type: [PresetRef],
    description: "The caller's presets at their latest versions, by slug (at most 100 per account).",
    resolve: (_root, _args, ctx) => ctx.presets.list(ctx),
  }),
  preset: t.withAuth({ authenticated: true }).field({
    type: PresetRef,
    description: "One of the caller's presets by slug (another account's is NOT_FOUND).",
    args: { slug: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.presets.get(ctx, args.slug),
  }),
}));

/**
 * Saving a preset changes what every key of the account sends through it (model, provider list, system prompt): an
 * account setting, so not with a restricted key (a spending limit, or issued to an app), which may still use presets.
 */
const managesPresets = { $all: { user: true, fullKey: true } } as const;
const NOT_RESTRICTED = 'Not with a restricted key (a spending limit, or issued to an app), which may still use presets.';

builder.mutationFields((t) => ({
  createPreset: t.withAuth(managesPresets).field({
    type: PresetRef,
    description: `Create a preset (version 1) in the caller's account. Slugs: 1 to 64 lowercase letters, digits and -. ${CONFIG_DESCRIPTION} Answers once a chat can use it. ${NOT_RESTRICTED}`,
    errors: { directResult: true },
    args: {
      slug: t.arg.string({ required: true }),
      name: t.arg.string({ required: true }),
      config: t.arg({ type: 'JSON', required: true }),
      systemPrompt: t.arg.string({ required: false, description: 'Sent as a system message before the request\'s messages (at most 32,000 characters).' }),
    },
    resolve: (_root, args, ctx) => ctx.presets.create(ctx, args.slug, { name: args.name, config: args.config, systemPrompt: args.systemPrompt ?? null }),
  }),
  updatePreset: t.withAuth(managesPresets).field({
    type: PresetRef,
    description: `A new version of one of the caller's presets (the whole config and system prompt; requests use it from now on). ${CONFIG_DESCRIPTION} ${NOT_RESTRICTED}`,
    errors: { directResult: true },
    args: {
      slug: t.arg.string({ required: true }),
      config: t.arg({ type: 'JSON', required: true }),
      systemPrompt: t.arg.string({ required: false }),
      name: t.arg.string({ required: false, description: 'Rename it too.' }),
    },
    resolve: (_root, args, ctx) => ctx.presets.update(ctx, args.slug, { config: args.config, systemPrompt: args.systemPrompt ?? null, name: args.name ?? null }),
  }),
  deletePreset: t.withAuth(managesPresets).field({
    type: DeletedPresetRef,
    description: `Delete a preset; requests naming it are refused from now on, and its slug may be created again. ${NOT_RESTRICTED}`,
    errors: { directResult: true },
    args: { slug: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.presets.delete(ctx, args.slug),
  }),
}));
