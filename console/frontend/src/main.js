import { createApp } from 'vue'
// Element Plus components are imported on demand by the build (vite.config.js); the services called from
// scripts (ElMessage, ElMessageBox, ElNotification) need their styles named here.
import 'element-plus/es/components/message/style/css'
import 'element-plus/es/components/message-box/style/css'
import 'element-plus/es/components/notification/style/css'
import App from './App.vue'
import { sendEarly } from './incidentSearch'
import { router } from './router'
import './style.css'

// Opened on the incidents list (a bookmark, a reload): ask for its page now, beside the session check.
const [hashPath, hashQuery = ''] = window.location.hash.slice(1).split('?')
if (hashPath === '/incidents') sendEarly(Object.fromEntries(new URLSearchParams(hashQuery)))

createApp(App).use(router).mount('#app')
