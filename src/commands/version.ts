import { Command } from '@oclif/core'
export default class Version extends Command {
  static override description = 'Print the version'
  async run(): Promise<void> { this.log('shoal 0.1.0') }
}
