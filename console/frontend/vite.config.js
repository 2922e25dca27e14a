// Built by set-up (scripts/setup.py: npm ci + vite build) into dist/, served by console/app.py.
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'

export default defineConfig({
  plugins: [
    vue(),
    // Element Plus on demand: each page's chunk carries only the components (and their CSS) it uses, so the
    // first page does not wait for the whole library (docs/benchmarks.md: console first render).
    Components({ resolvers: [ElementPlusResolver({ importStyle: 'css', directives: true })], dts: false }),
  ],
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    // No inline script anywhere: the server's Content-Security-Policy allows only script files of its origin.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 2000,
  },
})
