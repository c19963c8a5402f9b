import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mainJobConfig } from './main-job.js';
import { checkRegimeAndModes, mainRecipe, modeRunConfig, pretrainRunConfig } from './recipe.js';

describe('the main job recipe', () => {
  const options = { quick: false, data: 'data/synthetic' };

  it('builds each mode\'s run as base + regime + mode: the from-scratch baseline and DropClass are the main job\'s', () => {
    const dc = modeRunConfig('scratch', 'dropclass', 2, options);
    expect(dc).toEqual(mainJobConfig({ quick: false }, 2, true));
    expect(dc).toMatchObject({ dropclass: true, alpha: 10, seed: 2, iterations: 1600, learningRate: 0.05, dataset: { root: resolve('data/synthetic') } });
    expect(modeRunConfig('scratch', 'weighted-ce', 0, options)).toMatchObject({ dropclass: false, loss: { kind: 'ce', classWeights: 'median' } });
    expect(modeRunConfig('scratch', 'dropclass-alpha0', 0, { ...options, iterations: 800 })).toMatchObject({ dropclass: true, alpha: 0, iterations: 800 });
    for (const mode of Object.keys(mainRecipe().modes)) expect(() => modeRunConfig('scratch', mode, 0, options), mode).not.toThrow();
  });

  it('fine-tunes from the seed\'s pretraining run: a baseline on the balanced set beside the benchmark\'s folder', () => {
    const pretrain = pretrainRunConfig('finetune', 1, options);
    expect(pretrain).toMatchObject({ dropclass: false, seed: 1, iterations: 1600, dataset: { root: resolve('data/synthetic-pretrain'), evalSplits: ['val'], generate: { mode: 'pretrain', train: 2400, val: 800 } } });
    const ft = modeRunConfig('finetune', 'dropclass', 1, options, '/runs/ft/seed-1/pretrain');
    expect(ft).toMatchObject({ dropclass: true, seed: 1, iterations: 1600, init: { from: '/runs/ft/seed-1/pretrain', parts: ['backbone'] }, dataset: { root: resolve('data/synthetic') } });
    expect(() => modeRunConfig('finetune', 'dropclass', 1, options)).toThrow('the finetune regime starts every run from a pretraining run: give its folder');
    const quick = pretrainRunConfig('finetune', 0, { quick: true, data: 'data/synthetic-quick' });
    expect(quick.dataset.generate).toMatchObject({ mode: 'pretrain', size: 32, train: 24, val: 8 });
  });

  it('refuses unknown regimes and modes, and a comparison of fewer than two modes', () => {
    expect(() => checkRegimeAndModes('transfer', ['baseline', 'dropclass'])).toThrow(/unknown regime "transfer": the main job's regimes are scratch, finetune/);
    expect(() => checkRegimeAndModes('scratch', ['baseline'])).toThrow('--modes needs at least two different modes, the first the reference the others are compared with; got baseline');
    expect(() => checkRegimeAndModes('scratch', ['baseline', 'baseline'])).toThrow(/at least two different modes/);
  });
});
