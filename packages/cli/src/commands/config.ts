import { importBackbonePackage, printDefaultConfig } from '@dropclass/train';
import type { Command } from 'commander';

export function configCommand(program: Command): void {
  program
    .command('config')
    .description('run configs: print a complete default one, with a comment on every key')
    .option('--print [kind]', 'print the default run config for a backbone kind (default unet), e.g. dropclass config --print deeplabv3 > run.json')
    .option('--package <name>', 'import this package first, for the kind of a backbone plugin')
    .action(async (opts: { print?: string | boolean; package?: string }) => {
      if (!opts.print) throw new Error('say what to do: dropclass config --print [kind] prints a default run config');
      const kind = typeof opts.print === 'string' ? opts.print : 'unet';
      if (opts.package) await importBackbonePackage(opts.package, [process.cwd()], kind);
      process.stdout.write(`${printDefaultConfig(kind)}\n`);
    });
}
