// Built by set-up (scripts/setup.py: npm ci + vite build) into dist/, served by console/app.py.
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

export default defineConfig({
  plugins: [vue()],
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
