import { Command } from '@oclif/core'
import { VERSION } from '../version.ts'

export default class Version extends Command {
  static override description = 'Print the Shoal version'
  static override enableJsonFlag = true

  async run(): Promise<{ version: string; node: string }> {
    await this.parse(Version)
    this.log(`shoal ${VERSION} (node ${process.versions.node})`)
    return { version: VERSION, node: process.versions.node }
  }
}
